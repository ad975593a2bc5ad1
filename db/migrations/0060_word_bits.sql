-- Exact counts of full-text filters (`q`) from the entry bitmaps of 0050: the terms many entries
-- share get a bitmap of their own, family 'w', target = search_terms.id, so that count=true on
-- `q=drone` (46,000 entries at a million) reads a few hundred bitmap rows instead of rechecking
-- every matching entry in the heap.
--
-- A term is a lexeme of an entry's search vector ('drone'), or two lexemes at adjacent positions
-- ('air defenc'): that is what a two-word phrase ('air' <-> 'defenc') matches, so phrases count
-- exactly too. Only the terms listed in search_terms have bitmaps: sitrep_track_search_terms(n)
-- lists those in at least n entries (`sitrep track-words`); a count naming a rarer term makes
-- that term's bits from the few entries that have it (db/bitcount.py).
-- A change of an entry's text gives its slot up and takes a new one, as a change of day does.

CREATE TABLE search_terms (
    id    int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    term  text NOT NULL UNIQUE
);

-- The terms of a search vector: its lexemes, and its adjacent pairs as 'first second'.
CREATE FUNCTION sitrep_search_terms(v tsvector) RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lexeme FROM unnest(v)
    UNION
    SELECT a.lexeme || ' ' || b.lexeme
      FROM (SELECT lexeme, unnest(positions) AS pos FROM unnest(v)) a
      JOIN (SELECT lexeme, unnest(positions) AS pos FROM unnest(v)) b ON b.pos = a.pos + 1
$$;

-- 0050's rows of an entry's bits, and now the bits of its tracked terms.
ALTER FUNCTION sitrep_entry_bit_rows(bigint[], boolean) RENAME TO sitrep_entry_bit_rows_0050;
CREATE FUNCTION sitrep_entry_bit_rows(ids bigint[], links boolean)
RETURNS TABLE (family "char", target bigint, day date, slot int) LANGUAGE sql STABLE AS $$
    SELECT * FROM sitrep_entry_bit_rows_0050(ids, links)
    UNION ALL
    SELECT 'w', t.id, s.day, s.slot FROM entry_slots s JOIN entries e ON e.id = s.entry_id
     CROSS JOIN LATERAL sitrep_search_terms(e.search) AS x(term) JOIN search_terms t ON t.term = x.term
     WHERE s.entry_id = ANY(ids)
$$;

-- The 'w' rows of every entry (for the tracked terms); entry_slots must be complete.
CREATE FUNCTION sitrep_insert_word_bits() RETURNS void LANGUAGE sql AS $$
    INSERT INTO entry_bits (family, target, day, part, bits)
    SELECT 'w', t.id, s.day, s.slot / 1024, bit_or(sitrep_bit(s.slot))
      FROM entry_slots s JOIN entries e ON e.id = s.entry_id
     CROSS JOIN LATERAL sitrep_search_terms(e.search) AS x(term) JOIN search_terms t ON t.term = x.term
     GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
$$;

ALTER FUNCTION sitrep_rebuild_entry_bits() RENAME TO sitrep_rebuild_entry_bits_0050;
CREATE FUNCTION sitrep_rebuild_entry_bits() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sitrep_rebuild_entry_bits_0050();
    PERFORM sitrep_insert_word_bits();
END $$;

-- Track exactly the terms found in at least `min_entries` entries; answers how many. Writers to
-- entries wait meanwhile (a term counted but an entry written before its bits were set would be
-- missed); readers do not.
CREATE FUNCTION sitrep_track_search_terms(min_entries int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    LOCK TABLE entries IN SHARE MODE;
    DELETE FROM entry_bits WHERE family = 'w';
    DELETE FROM search_terms;
    INSERT INTO search_terms (term)
    SELECT x.term FROM entries e CROSS JOIN LATERAL sitrep_search_terms(e.search) AS x(term)
     GROUP BY x.term HAVING count(*) >= greatest(min_entries, 1) ORDER BY x.term;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM sitrep_insert_word_bits();
    RETURN n;
END $$;

-- A new text is a new slot, as a new day, blog or kind is (0050's sitrep_entries_bits, which
-- takes the rows where one of those changed): the old slot's 'w' bits stay behind, masked by 'e'.
CREATE FUNCTION sitrep_entries_text_bits() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(n.id) INTO ids FROM new_entries n JOIN old_entries o ON o.id = n.id
     WHERE n.search <> o.search
       AND (n.published_at AT TIME ZONE 'UTC')::date = (o.published_at AT TIME ZONE 'UTC')::date
       AND n.blog_id = o.blog_id AND n.kind = o.kind;
    IF ids IS NOT NULL THEN
        PERFORM sitrep_unslot_entries(ids);
        PERFORM sitrep_slot_entries(ids, true);
    END IF;
    RETURN NULL;
END $$;

-- named to fire after entries_sync_bits_update (a table's triggers fire in name order); on every
-- UPDATE, as a trigger with transition tables cannot name columns
CREATE TRIGGER entries_sync_bits_update_text AFTER UPDATE ON entries
    REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entries_text_bits();

-- a text change takes a new slot: it locks its day first, as the other moves do (0050)
DROP TRIGGER entries_sync_bits_lock ON entries;
CREATE TRIGGER entries_sync_bits_lock BEFORE INSERT OR DELETE OR UPDATE OF published_at, blog_id, kind, headline, body
    ON entries FOR EACH ROW EXECUTE FUNCTION sitrep_entry_days_lock();
