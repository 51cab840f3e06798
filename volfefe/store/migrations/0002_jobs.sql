-- 0002: what happened in each attempt of a classification job (procrastinate keeps no error
-- text), and the index behind "does this post have a waiting or running job?".

CREATE TABLE volfefe_job_attempts (
    id         bigserial   PRIMARY KEY,
    job_id     bigint      NOT NULL,  -- procrastinate_jobs.id; kept until the job is pruned
    content_id bigint,
    attempt    integer     NOT NULL CHECK (attempt >= 1),
    outcome    text        NOT NULL
               CHECK (outcome IN ('classified', 'already_classified', 'failed', 'retrying',
                                  'rescued')),
    error_type text,
    message    text,
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX volfefe_job_attempts_job_idx ON volfefe_job_attempts (job_id);
CREATE INDEX volfefe_job_attempts_errors_idx ON volfefe_job_attempts (at DESC)
    WHERE outcome IN ('failed', 'retrying', 'rescued');

CREATE INDEX volfefe_active_classify_jobs_idx
    ON procrastinate_jobs (((args ->> 'content_id')::bigint))
    WHERE status IN ('todo', 'doing') AND task_name = 'volfefe.classify_post';
