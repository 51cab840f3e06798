-- 0007: a stored result settles its post's waiting classification job, whoever stores it.
--
-- With auto-enqueue on (0005), every imported post got a job; `classify --all`, `classify
-- --ids`, `reclassify` or another application then stored the results and the jobs stayed
-- waiting: a backlog that was not one, and a job worker that later ended each of them as
-- `already_classified`. Now triggers on `classifications`, in the writer's own transaction,
-- cancel the post's waiting (`todo`) job, as procrastinate_cancel_job_v1 does (procrastinate
-- calls a waiting job ended without a run `cancelled`), and record the attempt outcome
-- `already_classified` for it. A running (`doing`) job is left alone: it stores its own result,
-- or finds the post classified. A job queued after the result (`jobs enqueue --ids` of a
-- classified post) stays queued, as before.

CREATE FUNCTION volfefe_settle_waiting_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH settled AS (
        UPDATE procrastinate_jobs AS j
           SET status = 'cancelled'::procrastinate_job_status
         WHERE j.status = 'todo'
           AND j.task_name = 'volfefe.classify_post'
           AND (j.args ->> 'content_id')::bigint IN (SELECT n.content_id FROM new_rows AS n)
        RETURNING j.id, (j.args ->> 'content_id')::bigint AS content_id, j.attempts
    )
    INSERT INTO volfefe_job_attempts (job_id, content_id, attempt, outcome)
    SELECT s.id, s.content_id, s.attempts + 1, 'already_classified' FROM settled AS s;
    RETURN NULL;
END
$$;

-- A trigger with transition tables has one event; an upsert (reclassify) fires both.
CREATE TRIGGER classifications_settle_jobs_insert
    AFTER INSERT ON classifications REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION volfefe_settle_waiting_jobs();

CREATE TRIGGER classifications_settle_jobs_update
    AFTER UPDATE ON classifications REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION volfefe_settle_waiting_jobs();
