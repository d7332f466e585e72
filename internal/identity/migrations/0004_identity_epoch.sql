-- The identity epoch: one counter that the database raises whenever
-- anything a signed-in principal is made of changes — a user's status,
-- freeze, name or department, a role, a department's code, a session's
-- end, an API key's state — in the transaction that changes it, whatever
-- code made the change. A server that caches who a session belongs to
-- checks the epoch (internal/pulse) before trusting its cache, so that no
-- server misses a deactivation, a freeze or a role change made on
-- another. Raised by triggers, not by the code, so that no path can forget.
CREATE TABLE identity_epoch (
    id INTEGER PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO identity_epoch (id, n) VALUES (1, 0);
--- sqlite
CREATE TRIGGER identity_epoch_users AFTER UPDATE OF status, frozen_at, username, department_id ON users
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_users_delete AFTER DELETE ON users
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_roles_insert AFTER INSERT ON user_roles
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_roles_update AFTER UPDATE ON user_roles
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_roles_delete AFTER DELETE ON user_roles
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_departments AFTER UPDATE OF code ON departments
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_departments_delete AFTER DELETE ON departments
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_sessions AFTER UPDATE OF ended_at, user_id, scope, expires_at, token_hash ON sessions
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_sessions_delete AFTER DELETE ON sessions
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_keys AFTER UPDATE OF revoked_at, status, frozen_at, scopes, department_id, secret_hash ON api_keys
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER identity_epoch_keys_delete AFTER DELETE ON api_keys
BEGIN UPDATE identity_epoch SET n = n + 1 WHERE id = 1; END;
--- postgres
CREATE FUNCTION identity_epoch_raise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE identity_epoch SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER identity_epoch_users AFTER UPDATE OF status, frozen_at, username, department_id OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION identity_epoch_raise();
CREATE TRIGGER identity_epoch_roles AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION identity_epoch_raise();
CREATE TRIGGER identity_epoch_departments AFTER UPDATE OF code OR DELETE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION identity_epoch_raise();
CREATE TRIGGER identity_epoch_sessions AFTER UPDATE OF ended_at, user_id, scope, expires_at, token_hash OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION identity_epoch_raise();
CREATE TRIGGER identity_epoch_keys AFTER UPDATE OF revoked_at, status, frozen_at, scopes, department_id, secret_hash OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION identity_epoch_raise();
