-- API keys for partners. The secret is never stored: only HMAC-SHA256(pepper, id ":" secret),
-- looked up by the public id (as NetBox does) and compared in constant time by the server.
-- Daily request counters are flushed here in batches by each instance (a few rows a minute).

CREATE TABLE api_keys (
    id            text PRIMARY KEY CONSTRAINT api_keys_id_check CHECK (id ~ '^[a-z0-9]{12}$'),
    secret_hash   bytea NOT NULL CONSTRAINT api_keys_secret_hash_check CHECK (length(secret_hash) = 32),
    name          text NOT NULL CONSTRAINT api_keys_name_check CHECK (length(name) BETWEEN 1 AND 200),
    owner         text CONSTRAINT api_keys_owner_check CHECK (owner IS NULL OR length(owner) BETWEEN 1 AND 200),
    scopes        text[] NOT NULL CONSTRAINT api_keys_scopes_check
                  CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'write', 'admin']::text[]),
    rate          integer NOT NULL CONSTRAINT api_keys_rate_check CHECK (rate BETWEEN 1 AND 1000000),
    -- browser origins ("https://example.org") this key may be used from; empty: a server key
    origins       text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    rotated_at    timestamptz,
    -- written at most once a minute per key, not on every request
    last_used_at  timestamptz
);
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

CREATE TABLE api_key_usage (
    key_id    text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day       date NOT NULL,
    requests  bigint NOT NULL DEFAULT 0,
    limited   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
);
