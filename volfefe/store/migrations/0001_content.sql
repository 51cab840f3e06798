-- 0001: posts, their sources and their classifications.
-- Needs a UTF8 database (the whitespace list below uses \u escapes, and posts carry emoji).

CREATE TABLE sources (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contents (
    id           bigserial   PRIMARY KEY,
    source_id    bigint      NOT NULL REFERENCES sources (id),
    external_id  text        NOT NULL CHECK (btrim(external_id) <> ''),
    author       text,
    text         text        NOT NULL DEFAULT '',
    url          text,
    published_at timestamptz,
    classified   boolean     NOT NULL DEFAULT false,
    -- Whether the text has anything but whitespace, with Python's str.isspace() as the
    -- definition, so the database and the classifier agree on what cannot be classified.
    has_text     boolean     NOT NULL GENERATED ALWAYS AS (
        btrim(text, E' \t\n\x0b\f\r\x1c\x1d\x1e\x1f\u0085\u00a0\u1680\u2000\u2001\u2002\u2003'
                    '\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000')
        <> ''
    ) STORED,
    inserted_at  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contents_source_external_id_key UNIQUE (source_id, external_id)
);

-- "What is left to classify, oldest first" is the hot query of the job queue.
CREATE INDEX contents_unclassified_idx ON contents (id) WHERE NOT classified AND has_text;
CREATE INDEX contents_published_at_idx ON contents (published_at);

CREATE TABLE classifications (
    id            bigserial        PRIMARY KEY,
    content_id    bigint           NOT NULL UNIQUE REFERENCES contents (id) ON DELETE CASCADE,
    sentiment     text             NOT NULL
                                   CHECK (sentiment IN ('positive', 'negative', 'neutral')),
    -- NaN fails this check too: PostgreSQL orders NaN above every number.
    confidence    double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    model_version text             NOT NULL CHECK (model_version <> ''),
    meta          jsonb            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(meta) = 'object'),
    inserted_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at    timestamptz      NOT NULL DEFAULT now()
);

CREATE INDEX classifications_sentiment_idx ON classifications (sentiment, confidence DESC);
CREATE INDEX classifications_confidence_idx ON classifications (confidence DESC);
CREATE INDEX classifications_model_version_idx ON classifications (model_version);
