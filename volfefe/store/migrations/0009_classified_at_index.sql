-- 0009: results by the time they were stored (`updated_at`, the API's `classified_at`): the
-- dashboard's tape, pipeline latency and throughput, and the overview's last-hour count read
-- a time range of them, which without this index is a scan of every result.

CREATE INDEX classifications_updated_at_idx ON classifications (updated_at);
