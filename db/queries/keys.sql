-- name: insert_key
-- Store a new key, the secret only as its hash.
INSERT INTO api_keys (id, secret_hash, name, owner, scopes, rate, origins, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *;

-- name: list_keys
-- Every key, oldest first, without the hash.
SELECT id, name, owner, scopes, rate, origins, created_at, expires_at, revoked_at, rotated_at, last_used_at
FROM api_keys
ORDER BY created_at, id;

-- name: list_keys_page
-- A page of keys, oldest first: those after ($1 created_at, $2 id) when $1 is given, at most $3 rows.
SELECT id, name, owner, scopes, rate, origins, created_at, expires_at, revoked_at, rotated_at, last_used_at
FROM api_keys
WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $2::text)
ORDER BY created_at, id
LIMIT $3;

-- name: count_keys
-- How many keys there are, revoked and expired ones included.
SELECT count(*) FROM api_keys;

-- name: get_key
-- One key by its public id, with the hash for verification.
SELECT id, secret_hash, name, owner, scopes, rate, origins, created_at, expires_at, revoked_at, rotated_at,
       last_used_at
FROM api_keys
WHERE id = $1;

-- name: revoke_key
-- Revoke a key, keeping the first revocation time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1
RETURNING *;

-- name: rotate_key
-- Give a live key a new secret hash: the old secret stops working.
UPDATE api_keys SET secret_hash = $2, rotated_at = now()
WHERE id = $1 AND revoked_at IS NULL
RETURNING *;

-- name: notify_key_changed
-- Tell every instance (LISTEN sitrep_keys) to forget what it cached about a key; sent at commit.
SELECT pg_notify('sitrep_keys', $1::text);

-- name: touch_last_used
-- Record that a key was used, unless that was already recorded in the last minute.
UPDATE api_keys SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: add_usage
-- Add batched request counts: parallel arrays of key id, day, requests, refused requests.
INSERT INTO api_key_usage AS u (key_id, day, requests, limited)
SELECT k, d, r, l
FROM unnest($1::text[], $2::date[], $3::bigint[], $4::bigint[]) AS t (k, d, r, l)
WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = t.k)
ON CONFLICT (key_id, day) DO UPDATE
SET requests = u.requests + excluded.requests, limited = u.limited + excluded.limited;

-- name: daily_usage
-- A key's request counts for its most recent days, newest first.
SELECT day, requests, limited
FROM api_key_usage
WHERE key_id = $1 AND day > current_date - $2::integer
ORDER BY day DESC;

-- name: active_origins
-- Every browser origin some usable key allows, for answering CORS preflights.
SELECT DISTINCT origin
FROM api_keys, unnest(origins) AS origin
WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: active_key_ids
-- The id of every usable key: an address held off for bad keys may still present one of these.
SELECT id FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());
