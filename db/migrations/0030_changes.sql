-- The change feed: every create, update and delete of a blog, entry, actor, location or
-- source, numbered by `seq` in commit order.
--
-- Why seq is assigned at commit and not at insert: a sequence value taken mid-transaction
-- lets a slow transaction commit seq 10 after a fast one has committed (and a reader has
-- seen) seq 11; a mirror that stored "11" would never see 10. So row triggers only note
-- what changed in `change_pending` (one row per entity per transaction, which also
-- coalesces an entry's link and media edits into one update), and a deferred constraint
-- trigger, at COMMIT, takes a transaction-scoped advisory lock, numbers the transaction's
-- changes and writes them to `changes`. The lock is released only after the commit is
-- visible (PostgreSQL makes a commit visible before it releases locks), so seq N+1 cannot
-- be assigned before seq N is visible to every new snapshot: readers never see a gap that
-- later fills. The price is that committing write transactions queue for a moment.
--
-- `data` is the entity's state at commit (for an entry: with its links and media); a
-- delete carries the last state before deletion, so a stream can still say which entry
-- went. After commit, NOTIFY sitrep_changes carries the transaction's last seq.
--
-- A bulk loader may bypass all this with session_replication_role = replica.

CREATE SEQUENCE changes_seq AS bigint;

CREATE TABLE changes (
    seq        bigint PRIMARY KEY,
    entity     text NOT NULL CONSTRAINT changes_entity_check
               CHECK (entity IN ('blog', 'entry', 'actor', 'location', 'source')),
    entity_id  bigint NOT NULL,
    op         text NOT NULL CONSTRAINT changes_op_check CHECK (op IN ('create', 'update', 'delete')),
    at         timestamptz NOT NULL,
    data       jsonb
);
-- the entry stream replays `entity = 'entry' AND seq > $1`
CREATE INDEX changes_entity_seq_idx ON changes (entity, seq);

CREATE TABLE change_pending (
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    entity      text NOT NULL,
    entity_id   bigint NOT NULL,
    op          text NOT NULL,
    noted       bigint GENERATED ALWAYS AS IDENTITY,
    last_state  jsonb,
    PRIMARY KEY (xid, entity, entity_id)
);

-- An entry as the feed and the streams carry it: exactly the REST entry (db/rows.py Entry),
-- links in the order REST lists them.
CREATE FUNCTION sitrep_entry_doc(bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
SELECT jsonb_build_object(
    'id', e.id,
    'blog', jsonb_build_object('id', e.blog_id, 'slug', b.slug, 'title', b.title),
    'published_at', e.published_at,
    'updated_at', e.updated_at,
    'created_at', e.created_at,
    'kind', e.kind,
    'headline', e.headline,
    'body', to_jsonb(e.body),
    'actors', COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
                   'role', ea.role,
                   'actor', jsonb_build_object('id', a.id, 'slug', a.slug, 'name', a.name, 'kind', a.kind,
                                               'country', a.country))
                   ORDER BY ea.role DESC, a.name, a.id)
          FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
         WHERE ea.entry_id = e.id), '[]'::jsonb),
    'locations', COALESCE((
        SELECT jsonb_agg(jsonb_build_object('id', l.id, 'slug', l.slug, 'name', l.name, 'kind', l.kind,
                                            'country', l.country, 'latitude', l.latitude,
                                            'longitude', l.longitude, 'parent_id', l.parent_id)
                         ORDER BY l.name, l.id)
          FROM entry_locations el JOIN locations l ON l.id = el.location_id
         WHERE el.entry_id = e.id), '[]'::jsonb),
    'sources', COALESCE((
        SELECT jsonb_agg(jsonb_build_object('id', s.id, 'slug', s.slug, 'name', s.name, 'kind', s.kind)
                         ORDER BY s.name, s.id)
          FROM entry_sources es JOIN sources s ON s.id = es.source_id
         WHERE es.entry_id = e.id), '[]'::jsonb),
    'media', COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
                   'position', m.position, 'kind', m.kind, 'url', m.url, 'caption', m.caption,
                   'credit', m.credit, 'alt_text', m.alt_text,
                   'embed', CASE WHEN m.kind = 'embed' THEN jsonb_build_object(
                                'author', m.embed_author, 'handle', m.embed_handle, 'date', m.embed_date,
                                'text', m.embed_text, 'url', m.embed_url) END)
                   ORDER BY m.position)
          FROM media m WHERE m.entry_id = e.id), '[]'::jsonb)
)
  FROM entries e LEFT JOIN blogs b ON b.id = e.blog_id
 WHERE e.id = $1
$$;

CREATE FUNCTION sitrep_change_doc(entity text, entity_id bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
SELECT CASE entity
    WHEN 'entry' THEN sitrep_entry_doc(entity_id)
    WHEN 'blog' THEN (SELECT to_jsonb(b) FROM blogs b WHERE b.id = entity_id)
    WHEN 'actor' THEN (SELECT to_jsonb(a) FROM actors a WHERE a.id = entity_id)
    WHEN 'location' THEN (SELECT to_jsonb(l) FROM locations l WHERE l.id = entity_id)
    WHEN 'source' THEN (SELECT to_jsonb(s) FROM sources s WHERE s.id = entity_id)
END
$$;

-- Note one change; a later note of the same entity in the same transaction merges into it.
CREATE FUNCTION sitrep_note(p_entity text, p_id bigint, p_op text, p_last jsonb) RETURNS void
    LANGUAGE sql AS $$
INSERT INTO change_pending (entity, entity_id, op, last_state)
VALUES (p_entity, p_id, p_op, p_last)
ON CONFLICT (xid, entity, entity_id) DO UPDATE
   -- 'gone': created and deleted within this transaction, so nothing to publish
   SET op = CASE
           WHEN change_pending.op IN ('create', 'gone') THEN
               CASE excluded.op WHEN 'delete' THEN 'gone' WHEN 'create' THEN 'create' ELSE change_pending.op END
           WHEN change_pending.op = 'delete' THEN
               CASE excluded.op WHEN 'create' THEN 'update' ELSE 'delete' END
           ELSE excluded.op END,
       last_state = COALESCE(excluded.last_state, change_pending.last_state)
$$;

-- blogs, actors, locations, sources: AFTER INSERT OR UPDATE OR DELETE, TG_ARGV[0] = entity
CREATE FUNCTION sitrep_note_row() RETURNS trigger LANGUAGE plpgsql SET TimeZone TO 'UTC' AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM sitrep_note(TG_ARGV[0], OLD.id, 'delete', to_jsonb(OLD));
    ELSE
        PERFORM sitrep_note(TG_ARGV[0], NEW.id, CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'update' END, NULL);
    END IF;
    RETURN NULL;
END $$;

-- entries: BEFORE DELETE, while the links and media that make up its last state still exist
CREATE FUNCTION sitrep_note_entry_delete() RETURNS trigger LANGUAGE plpgsql SET TimeZone TO 'UTC' AS $$
BEGIN
    PERFORM sitrep_note('entry', OLD.id, 'delete', sitrep_entry_doc(OLD.id));
    RETURN OLD;
END $$;

-- entry_actors, entry_locations, entry_sources, media: a change of the owning entry
CREATE FUNCTION sitrep_note_entry_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM sitrep_note('entry', OLD.entry_id, 'update', NULL);
    ELSE
        PERFORM sitrep_note('entry', NEW.entry_id, 'update', NULL);
    END IF;
    RETURN NULL;
END $$;

-- At COMMIT: number this transaction's changes in commit order (see the top of this file).
CREATE FUNCTION sitrep_flush_changes() RETURNS trigger LANGUAGE plpgsql SET TimeZone TO 'UTC' AS $$
DECLARE
    last_seq bigint;
BEGIN
    -- fires once per pending row; the first firing does the work for all of them
    IF NOT EXISTS (SELECT 1 FROM change_pending WHERE xid = pg_current_xact_id()) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(8317980662474424368);  -- 0x7369747265700030: 'sitrep' changes
    WITH done AS (
        DELETE FROM change_pending WHERE xid = pg_current_xact_id()
        RETURNING entity, entity_id, op, noted, last_state
    ), docs AS (
        SELECT d.*, sitrep_change_doc(d.entity, d.entity_id) AS doc FROM done d
    ), written AS (
        INSERT INTO changes (seq, entity, entity_id, op, at, data)
        SELECT nextval('changes_seq'), entity, entity_id,
               CASE WHEN doc IS NULL THEN 'delete' WHEN op IN ('create', 'gone') THEN 'create' ELSE 'update' END,
               clock_timestamp(), COALESCE(doc, last_state)
          FROM docs
         WHERE NOT (doc IS NULL AND op IN ('create', 'gone'))  -- born and gone in one transaction
         ORDER BY noted
        RETURNING seq
    )
    SELECT max(seq) INTO last_seq FROM written;
    IF last_seq IS NOT NULL THEN
        PERFORM pg_notify('sitrep_changes', last_seq::text);
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER change_pending_flush AFTER INSERT ON change_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sitrep_flush_changes();

CREATE TRIGGER blogs_changes AFTER INSERT OR UPDATE OR DELETE ON blogs
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_row('blog');
CREATE TRIGGER actors_changes AFTER INSERT OR UPDATE OR DELETE ON actors
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_row('actor');
CREATE TRIGGER locations_changes AFTER INSERT OR UPDATE OR DELETE ON locations
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_row('location');
CREATE TRIGGER sources_changes AFTER INSERT OR UPDATE OR DELETE ON sources
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_row('source');
CREATE TRIGGER entries_changes AFTER INSERT OR UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_row('entry');
CREATE TRIGGER entries_changes_delete BEFORE DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_entry_delete();
CREATE TRIGGER entry_actors_changes AFTER INSERT OR DELETE OR UPDATE OF role ON entry_actors
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_entry_part();
CREATE TRIGGER entry_locations_changes AFTER INSERT OR DELETE ON entry_locations
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_entry_part();
CREATE TRIGGER entry_sources_changes AFTER INSERT OR DELETE ON entry_sources
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_entry_part();
CREATE TRIGGER media_changes AFTER INSERT OR UPDATE OR DELETE ON media
    FOR EACH ROW EXECUTE FUNCTION sitrep_note_entry_part();

-- Idempotency-Key: a retried write returns the first answer. `request_hash` tells a retry
-- from a different request reusing the key; rows older than a day may be pruned.
CREATE TABLE idempotency_keys (
    caller        text NOT NULL,
    key           text NOT NULL CONSTRAINT idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL,
    status        int NOT NULL,
    body          bytea NOT NULL,
    location      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
