-- "Wie keek mee" (sqlite): which partner read which data about a student, per grant, scope and
-- hour (a count and the last read), recorded in memory on active introspection and userinfo
-- and written in batches. Purged after the configured retention (default: the current
-- school year plus the previous one). Keep in step with ../postgres.
CREATE TABLE access_log (
    grant_id     TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    hour_start   BIGINT NOT NULL,
    reads        BIGINT NOT NULL,
    last_read_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, scope, hour_start)
);
-- The retention purge finds old rows by hour.
CREATE INDEX access_log_hour ON access_log(hour_start);
