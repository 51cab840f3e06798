-- 0005: every post with text gets a classification job, whoever writes it (volfefe's import,
-- another application's ORM, plain SQL), in the writer's own transaction.
--
-- volfefe_enqueue_classify(ids) is the one enqueue: `jobs enqueue`, `import --enqueue`, the
-- periodic enqueue and the triggers below all call it. Under a transaction-level advisory lock
-- (so two enqueuers cannot both see "no active job") it queues a job for each post that has
-- no waiting or running one, and returns (content_id, job_id) for the jobs it queued.
-- procrastinate's insert trigger then sends its NOTIFY, which wakes a listening `jobs worker`.
--
-- The switch: volfefe_settings row 'auto_enqueue' = 'on' | 'off' (set by
-- `VOLFEFE_AUTO_ENQUEUE=off python -m volfefe db migrate`). It lives in the database because
-- the triggers run inside other applications' transactions, where volfefe's environment is not.

CREATE TABLE volfefe_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO volfefe_settings (name, value) VALUES ('auto_enqueue', 'on');

CREATE FUNCTION volfefe_enqueue_classify(ids bigint[], run_at timestamptz DEFAULT NULL)
    RETURNS TABLE (content_id bigint, job_id bigint)
    LANGUAGE plpgsql
AS $$
DECLARE
    job_ids bigint[];
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    -- 0x766F6C656E71 ("volenq"): volfefe.jobs.queue.ENQUEUE_LOCK, also taken by `jobs retry`.
    PERFORM pg_advisory_xact_lock(130220932034161);
    SELECT procrastinate_defer_jobs_v1(array_agg(
               ROW('ml_classification', 'volfefe.classify_post', 0, NULL, NULL,
                   jsonb_build_object('content_id', w.id), run_at)::procrastinate_job_to_defer_v1
               ORDER BY w.first))
      INTO job_ids
      FROM (SELECT t.id, min(t.n) AS first
              FROM unnest(ids) WITH ORDINALITY AS t(id, n)
             WHERE t.id IS NOT NULL
             GROUP BY t.id) AS w
     WHERE NOT EXISTS (
               SELECT 1 FROM procrastinate_jobs AS j
                WHERE j.status IN ('todo', 'doing')
                  AND j.task_name = 'volfefe.classify_post'
                  AND (j.args ->> 'content_id')::bigint = w.id);
    RETURN QUERY
        SELECT (j.args ->> 'content_id')::bigint, j.id
          FROM procrastinate_jobs AS j
         WHERE j.id = ANY(job_ids)
         ORDER BY j.id;
END
$$;

-- Which rows of a statement need a job: text, not classified, not quarantined (0004).
CREATE FUNCTION volfefe_auto_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint[];
BEGIN
    IF (SELECT value FROM volfefe_settings WHERE name = 'auto_enqueue') IS DISTINCT FROM 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        wanted := ARRAY(
            SELECT n.id FROM new_rows AS n
             WHERE n.has_text AND NOT n.classified
               AND n.quarantined_at IS NULL
             ORDER BY n.id);
    ELSE
        wanted := ARRAY(
            SELECT n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
             WHERE n.text IS DISTINCT FROM o.text AND n.has_text AND NOT n.classified
               AND n.quarantined_at IS NULL
             ORDER BY n.id);
    END IF;
    PERFORM volfefe_enqueue_classify(wanted);  -- takes the lock only when there is work
    RETURN NULL;
END
$$;

-- Statement-level with transition tables: an import of 10,000 posts is one enqueue call.
CREATE TRIGGER contents_auto_enqueue_insert
    AFTER INSERT ON contents REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION volfefe_auto_enqueue();

CREATE TRIGGER contents_auto_enqueue_update
    AFTER UPDATE ON contents REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION volfefe_auto_enqueue();
