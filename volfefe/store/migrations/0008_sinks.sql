-- 0008: sinks (webhooks, NATS JetStream subjects) and the delivery cursor of each.
--
-- Every stored version of a classification gets a `version` (a sequence) and `written_by`,
-- the id of the transaction that wrote it; a reclassification (the upsert of `reclassify`, or
-- any UPDATE that changes the row) gets new ones. A sink's cursor is the (written_by, version)
-- of the last version it was sent; a delivery process reads the versions after it, in that
-- order, but only those whose transaction is older than every transaction still running
-- (pg_snapshot_xmin): those can no longer gain a version that sorts before them, so the cursor
-- never skips one that commits late (the transactional-outbox shape, without an outbox).

CREATE SEQUENCE classifications_version_seq;

ALTER TABLE classifications
    ADD COLUMN version    bigint,
    ADD COLUMN written_by xid8;

UPDATE classifications AS k
   SET version = o.n, written_by = pg_current_xact_id()
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM classifications) AS o
 WHERE o.id = k.id;

SELECT setval('classifications_version_seq', coalesce(max(version), 0) + 1, false)
  FROM classifications;

ALTER TABLE classifications
    ALTER COLUMN version    SET DEFAULT nextval('classifications_version_seq'),
    ALTER COLUMN version    SET NOT NULL,
    ALTER COLUMN written_by SET DEFAULT pg_current_xact_id(),
    ALTER COLUMN written_by SET NOT NULL;
ALTER SEQUENCE classifications_version_seq OWNED BY classifications.version;

CREATE INDEX classifications_delivery_idx ON classifications (written_by, version);

CREATE FUNCTION volfefe_new_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('classifications_version_seq');
    NEW.written_by := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE TRIGGER classifications_new_version
    BEFORE UPDATE ON classifications
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION volfefe_new_version();

-- One row per sink. `secret` signs a webhook's messages (Standard Webhooks, `whsec_...`);
-- the filters are NULL for "any". A new sink starts at the oldest running transaction: it gets
-- what is stored from its creation on (and possibly a few results stored just before).
CREATE TABLE volfefe_sinks (
    id                   bigserial        PRIMARY KEY,
    kind                 text             NOT NULL CHECK (kind IN ('webhook', 'nats')),
    target               text             NOT NULL CHECK (btrim(target) <> ''),
    bus_url              text,
    secret               text,
    sentiments           text[],
    min_confidence       double precision CHECK (min_confidence >= 0 AND min_confidence <= 1),
    sources              text[],
    paused               boolean          NOT NULL DEFAULT false,
    cursor_xid           xid8             NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
    cursor_version       bigint           NOT NULL DEFAULT 0,
    delivered            bigint           NOT NULL DEFAULT 0,
    failures             bigint           NOT NULL DEFAULT 0,
    consecutive_failures integer          NOT NULL DEFAULT 0,
    last_delivery_at     timestamptz,
    last_error           text,
    last_error_at        timestamptz,
    created_at           timestamptz      NOT NULL DEFAULT now()
);
