-- The daily paper–electronic reconciliation (seed 003 §4.2.1: sync rate
-- 100 %): one row per day of the hospital's calendar, written once by
-- whichever server runs it first. Counts and the rate (in tenths of a
-- percent) only: the lists behind them are computed again on demand.
CREATE TABLE folder_reconciliations (
    day TEXT PRIMARY KEY,
    computed_at BIGINT NOT NULL,
    rate_permille INTEGER NOT NULL,
    folders INTEGER NOT NULL,
    inpatients INTEGER NOT NULL,
    matched INTEGER NOT NULL,
    folders_without_electronic INTEGER NOT NULL,
    patients_without_folder INTEGER NOT NULL
);
