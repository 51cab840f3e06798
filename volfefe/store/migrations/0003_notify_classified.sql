-- 0003: announce every stored classification on channel `volfefe_classified`, from the
-- storing transaction itself, whoever writes it (a job, `classify`, another application).
-- PostgreSQL delivers the notification at commit and never for a rolled-back transaction.
-- Payload: {"id", "content_id", "sentiment", "confidence", "model_version", "classified_at"};
-- `id` is the classification's id, the cursor a consumer catches up from after a restart.

CREATE FUNCTION volfefe_notify_classified() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('volfefe_classified', json_build_object(
        'id', NEW.id,
        'content_id', NEW.content_id,
        'sentiment', NEW.sentiment,
        'confidence', NEW.confidence,
        'model_version', NEW.model_version,
        'classified_at', NEW.updated_at
    )::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER classifications_notify
    AFTER INSERT OR UPDATE ON classifications
    FOR EACH ROW EXECUTE FUNCTION volfefe_notify_classified();
