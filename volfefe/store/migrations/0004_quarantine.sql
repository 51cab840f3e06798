-- 0004: poison quarantine. A post whose text, sent alone, killed, hung or garbled a child is
-- quarantined: nothing classifies it again by itself (jobs' retries, the periodic enqueue,
-- `classify --all`) until someone forces a try (`classify --ids`, `jobs retry`), a forced try
-- succeeds, or an import changes its text.

ALTER TABLE contents
    ADD COLUMN quarantined_at    timestamptz NULL,
    ADD COLUMN quarantine_reason text        NULL;

CREATE INDEX contents_quarantined_idx ON contents (quarantined_at) WHERE quarantined_at IS NOT NULL;

-- A job whose post got quarantined records that outcome (instead of a bare 'failed'); an
-- attempt cut off by the job worker's shutdown is 'interrupted' (queued again at once).
ALTER TABLE volfefe_job_attempts DROP CONSTRAINT volfefe_job_attempts_outcome_check;
ALTER TABLE volfefe_job_attempts ADD CONSTRAINT volfefe_job_attempts_outcome_check
    CHECK (outcome IN ('classified', 'already_classified', 'failed', 'retrying', 'rescued',
                       'quarantined', 'interrupted'));
