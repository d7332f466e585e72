-- The version of the blind-index key each patient's indexes (name_index,
-- id_number_index, phone_index, mrn_index) were computed under. Every row
-- before index key versions was indexed under version 1. A rotation's
-- re-index moves the rows of the retiring version, found through
-- patients_index_version, to the active one (docs/keys.md).
ALTER TABLE patients ADD COLUMN index_version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX patients_index_version ON patients (index_version, id);
