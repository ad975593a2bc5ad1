// A real JavaScript client (Apollo Client) against a live sitrep /graphql endpoint.
//
//   node client.mjs <graphql-url> <actor-slug> <page-size>
//
// Runs three things a frontend would do and prints one JSON object for
// tests/schema/test_node_client.py to check against the database:
//   filtered: the entries of one actor (a filtered connection with nested links)
//   walk:     every entry, following endCursor page by page (forward)
//   apq:      Automatic Persisted Queries through Apollo's PersistedQueryLink, with every
//             HTTP exchange recorded (hash first, PERSISTED_QUERY_NOT_FOUND, then the query)
import { createHash } from "node:crypto";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, actor, pageSizeText] = process.argv.slice(2);
if (!url || !actor || !pageSizeText) {
  console.error("usage: node client.mjs <graphql-url> <actor-slug> <page-size>");
  process.exit(2);
}
const pageSize = Number(pageSizeText);
const MAX_PAGES = 200; // a walk that never ends is a failure, not a hang

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

function client(link) {
  return new ApolloClient({
    link,
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: "no-cache" } },
  });
}

// fetch that records what went over the wire
function recordingFetch(exchanges) {
  return async (input, init) => {
    const sent = JSON.parse(init.body);
    const response = await fetch(input, init);
    const received = await response.clone().json();
    exchanges.push({
      status: response.status,
      sentQuery: typeof sent.query === "string" ? sent.query : null,
      sentHash: sent.extensions?.persistedQuery?.sha256Hash ?? null,
      errorCodes: (received.errors ?? []).map((e) => e.extensions?.code ?? null),
      hasData: received.data != null,
    });
    return response;
  };
}

const FILTERED = gql`
  query ActorEntries($actor: String!) {
    entries(filter: { actor: [$actor] }, first: 100) {
      totalCount
      nodes {
        databaseId
        headline
        publishedAt
        actors {
          role
          actor {
            slug
          }
        }
      }
    }
  }
`;

const PAGE = gql`
  query Page($first: Int!, $after: String) {
    entries(first: $first, after: $after) {
      edges {
        cursor
        node {
          databaseId
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`;

const LATEST = gql`
  query Latest {
    entries(first: 5) {
      nodes {
        databaseId
        headline
      }
    }
  }
`;

async function filtered() {
  const plain = client(new HttpLink({ uri: url }));
  const { data } = await plain.query({ query: FILTERED, variables: { actor } });
  return {
    totalCount: data.entries.totalCount,
    ids: data.entries.nodes.map((n) => n.databaseId),
    actorsLinked: data.entries.nodes.map((n) => n.actors.map((a) => a.actor.slug)),
    roles: [...new Set(data.entries.nodes.flatMap((n) => n.actors.map((a) => a.role)))].sort(),
  };
}

async function walk() {
  const plain = client(new HttpLink({ uri: url }));
  const ids = [];
  const pageLengths = [];
  let after = null;
  for (let pages = 0; pages < MAX_PAGES; pages++) {
    const { data } = await plain.query({ query: PAGE, variables: { first: pageSize, after } });
    const { edges, pageInfo } = data.entries;
    pageLengths.push(edges.length);
    ids.push(...edges.map((e) => e.node.databaseId));
    if (!pageInfo.hasNextPage) return { ids, pageLengths, finished: true };
    after = pageInfo.endCursor;
  }
  return { ids, pageLengths, finished: false };
}

async function apq() {
  // a fresh process-wide query text each run, so the server cannot have seen its hash
  const marker = `apq${Date.now()}${Math.random().toString(36).slice(2)}`;
  const query = gql(LATEST.loc.source.body.replace("query Latest", `query Latest_${marker}`));
  const first = [];
  const firstClient = client(
    ApolloLink.from([new PersistedQueryLink({ sha256 }), new HttpLink({ uri: url, fetch: recordingFetch(first) })]),
  );
  const registered = await firstClient.query({ query });
  // a second client (another browser, say) sends the hash alone and is answered from it
  const second = [];
  const secondClient = client(
    ApolloLink.from([new PersistedQueryLink({ sha256 }), new HttpLink({ uri: url, fetch: recordingFetch(second) })]),
  );
  const replayed = await secondClient.query({ query });
  return {
    first,
    second,
    registeredIds: registered.data.entries.nodes.map((n) => n.databaseId),
    replayedIds: replayed.data.entries.nodes.map((n) => n.databaseId),
  };
}

const result = { filtered: await filtered(), walk: await walk(), apq: await apq() };
process.stdout.write(JSON.stringify(result) + "\n");
