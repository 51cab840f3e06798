-- 0006: the periodic enqueue skips posts classified meanwhile, in the statement that queues.
--
-- The hourly `enqueue-unclassified` task selected unclassified posts, then called
-- volfefe_enqueue_classify in a later statement. A post whose job stored its classification and
-- finished in between had no active job any more, so it got a second job (which then ended as
-- `already_classified`: no second result, but wasted work and a misleading job count).
--
-- Now the caller can ask for `unclassified_only`: the same statement that checks "no waiting or
-- running job" also checks "not classified", on one snapshot. A job stores its classification
-- (and sets `classified`) before procrastinate marks it finished, so whichever moment that
-- snapshot is taken, the post is either classified or has an active job, and is skipped.
-- `jobs enqueue` keeps the default (false): a post named on purpose gets its job, which ends as
-- `already_classified` when the post has a result.

DROP FUNCTION volfefe_enqueue_classify(bigint[], timestamptz);

CREATE FUNCTION volfefe_enqueue_classify(
    ids bigint[], run_at timestamptz DEFAULT NULL, unclassified_only boolean DEFAULT false
)
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
                  AND (j.args ->> 'content_id')::bigint = w.id)
       AND (NOT unclassified_only OR EXISTS (
               SELECT 1 FROM contents AS c
                WHERE c.id = w.id AND NOT c.classified AND c.has_text
                  AND c.quarantined_at IS NULL));
    RETURN QUERY
        SELECT (j.args ->> 'content_id')::bigint, j.id
          FROM procrastinate_jobs AS j
         WHERE j.id = ANY(job_ids)
         ORDER BY j.id;
END
$$;
