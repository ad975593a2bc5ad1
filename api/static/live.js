// The live page: blogs, a blog's entries newest first kept current over GraphQL
// subscriptions, filters from the catalog, a map and an hourly timeline. It uses only the
// public API (REST under /v1, GraphQL over WebSocket), so it is also a reference client.

import { LiveSocket } from "./graphql-ws.js";
import { EntryMap } from "./map.js";
import { drawTimeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const FILTERS = ["actor", "location", "source"];
const PAGE = 50;
const state = { blog: "", actor: "", location: "", source: "", next: null, total: 0, generation: 0, stops: [] };

// ---- the API ---------------------------------------------------------------------------------

const key = () => localStorage.getItem("sitrep.key") || "";
const authHeaders = () => (key() ? { Authorization: `Bearer ${key()}` } : {});

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.append(name, value);
  const response = await fetch(url, { headers: { Accept: "application/json", ...authHeaders() } });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const hint = response.status === 401 || response.status === 403 ? " (paste a key under “API key”, top right)" : "";
    const error = new Error(`${problem.title || response.status}: ${problem.detail || response.statusText}${hint}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

const entryParams = () => ({ blog: state.blog, actor: state.actor, location: state.location, source: state.source });

function graphFilter() {
  const filter = {};
  for (const [name, value] of Object.entries(entryParams())) if (value) filter[name] = [value];
  return filter;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

// ---- state in the address (shareable views) ---------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.blog = params.get("blog") || state.blog;
  for (const name of FILTERS) state[name] = params.get(name) || "";
}

function writeHash() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(entryParams())) if (value) params.set(name, value);
  history.replaceState(null, "", `#${params}`);
}

// ---- rendering --------------------------------------------------------------------------------

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

const hhmm = (iso) => new Date(iso).toISOString().slice(11, 16);
const order = (e) => [Date.parse(e.published_at), e.id];
const newer = (a, b) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

function renderEntry(entry) {
  const li = node("li", "entry");
  li.dataset.id = entry.id;
  li.dataset.order = JSON.stringify(order(entry));
  const time = node("time", "", hhmm(entry.published_at));
  time.dateTime = entry.published_at;
  li.append(time, node("h3", "", entry.headline));
  if (entry.kind !== "post") li.append(" ", node("span", "badge", entry.kind.replace("_", " ")));
  for (const paragraph of entry.body.slice(0, 3)) li.append(node("p", "", paragraph));
  const chips = node("div", "chips");
  for (const { role, actor } of entry.actors) {
    const chip = node("span", `chip actor ${role}`, actor.name);
    chip.title = role;
    chips.append(chip);
  }
  // the most specific places only (an entry in Sevastopol is also in Crimea and Ukraine)
  const parents = new Set(entry.locations.map((l) => l.parent_id));
  for (const place of entry.locations.filter((l) => !parents.has(l.id))) chips.append(node("span", "chip location", place.name));
  for (const source of entry.sources) chips.append(node("span", "chip source", source.name));
  if (chips.childElementCount) li.append(chips);
  return li;
}

function setCount() {
  $("count").textContent = `${state.total} ${state.total === 1 ? "entry" : "entries"}`;
}

// Put an entry where it belongs (newest first), replacing its older version.
function place(entry, fresh) {
  const list = $("entries");
  const old = list.querySelector(`[data-id="${entry.id}"]`);
  const rank = order(entry);
  const last = list.lastElementChild;
  if (!old && state.next && last && newer(JSON.parse(last.dataset.order), rank)) return; // on a later page
  const li = renderEntry(entry);
  if (fresh) li.classList.add("fresh");
  old?.remove();
  const before = [...list.children].find((other) => newer(rank, JSON.parse(other.dataset.order)));
  list.insertBefore(li, before ?? null);
  if (!old) {
    state.total += 1;
    setCount();
  }
}

function drop(id) {
  const li = $("entries").querySelector(`[data-id="${id}"]`);
  if (!li) return;
  li.remove();
  state.total -= 1;
  setCount();
}

// ---- loading ----------------------------------------------------------------------------------

async function loadBlogs() {
  const { data } = await api("/v1/blogs", { limit: "50" });
  if (!state.blog && data.length) state.blog = data[0].slug;
  const list = $("blogs");
  list.replaceChildren();
  for (const blog of data) {
    const button = node("button");
    button.dataset.slug = blog.slug;
    button.append(node("span", `badge ${blog.status}`, blog.status), " ", blog.title);
    button.append(node("small", "", `${blog.published_at.slice(0, 10)} · ${blog.entry_count} entries`));
    button.onclick = () => {
      state.blog = blog.slug;
      for (const name of FILTERS) state[name] = "";
      view();
    };
    const li = node("li");
    li.append(button);
    list.append(li);
  }
  return data;
}

async function loadCatalog() {
  const kinds = { actor: "/v1/actors", location: "/v1/locations", source: "/v1/sources" };
  await Promise.all(
    Object.entries(kinds).map(async ([name, path]) => {
      const { data } = await api(path, { sort: "-entry_count", limit: "200" });
      const select = $(name);
      select.replaceChildren(new Option("any", ""));
      for (const item of data.filter((i) => i.entry_count > 0)) {
        select.append(new Option(`${item.name} (${item.entry_count})`, item.slug));
      }
    }),
  );
}

function showBlog(blogs) {
  for (const button of $("blogs").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.slug === state.blog));
  }
  const blog = blogs.find((b) => b.slug === state.blog);
  const head = $("blog");
  head.replaceChildren();
  if (!blog) return;
  head.append(node("h2", "", blog.title));
  if (blog.standfirst) head.append(node("p", "", blog.standfirst));
  if (blog.summary.length) {
    const ul = node("ul");
    for (const point of blog.summary) ul.append(node("li", "", point));
    head.append(ul);
  }
}

async function loadEntries(generation) {
  const page = await api("/v1/entries", { ...entryParams(), limit: String(PAGE), count: "true" });
  if (generation !== state.generation) return;
  state.next = page.page.next_cursor;
  state.total = page.page.total ?? page.data.length;
  $("entries").replaceChildren(...page.data.map(renderEntry));
  $("more").hidden = !state.next;
  setCount();
}

async function loadOlder() {
  const page = await api("/v1/entries", { ...entryParams(), limit: String(PAGE), cursor: state.next });
  state.next = page.page.next_cursor;
  for (const entry of page.data) if (!$("entries").querySelector(`[data-id="${entry.id}"]`)) $("entries").append(renderEntry(entry));
  $("more").hidden = !state.next;
}

async function loadPictures(generation) {
  const [geo, timeline] = await Promise.all([
    api("/v1/entries", { ...entryParams(), limit: "200", format: "geojson" }),
    api("/v1/timeline", { ...entryParams(), interval: "hour" }),
  ]);
  if (generation !== state.generation) return;
  map.show(geo);
  drawTimeline($("timeline"), timeline.data);
}

let pictureTimer;
function refreshPictures() {
  clearTimeout(pictureTimer);
  pictureTimer = setTimeout(() => loadPictures(state.generation).catch(showError), 250);
}

// ---- live -------------------------------------------------------------------------------------

const SUBSCRIPTIONS = {
  entryPublished: "subscription Published($filter: EntryFilter) { entryPublished(filter: $filter) { databaseId } }",
  entryUpdated: "subscription Updated($filter: EntryFilter) { entryUpdated(filter: $filter) { databaseId } }",
  entryDeleted: "subscription Deleted($filter: EntryFilter) { entryDeleted(filter: $filter) { databaseId } }",
};

async function onChange(field, payload) {
  if (payload.errors) return showError(payload.errors[0].message);
  const id = payload.data[field].databaseId;
  if (field === "entryDeleted") drop(id);
  else {
    try {
      place(await api(`/v1/entries/${id}`), true);
    } catch (error) {
      if (error.status !== 404) throw error; // deleted since: its entryDeleted follows
    }
  }
  refreshPictures();
}

function subscribe() {
  for (const stop of state.stops) stop();
  const variables = { filter: graphFilter() };
  state.stops = Object.entries(SUBSCRIPTIONS).map(([field, query]) =>
    socket.subscribe(query, variables, (payload) => onChange(field, payload).catch(showError), (errors) => showError(errors[0]?.message)),
  );
}

function setStatus(text) {
  const status = $("status");
  const reconnected = text === "live" && status.dataset.state !== "live" && status.dataset.seen;
  status.textContent = text;
  status.dataset.state = text === "live" ? "live" : "down";
  if (text === "live") status.dataset.seen = "yes";
  if (reconnected) view(); // changes made while the socket was down: read the view again
}

// ---- the view ---------------------------------------------------------------------------------

let blogs = [];
async function view() {
  const generation = ++state.generation;
  writeHash();
  for (const name of FILTERS) $(name).value = state[name];
  showBlog(blogs);
  showError(null);
  subscribe();
  try {
    await Promise.all([loadEntries(generation), loadPictures(generation)]);
  } catch (error) {
    showError(error);
  }
}

const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
const socket = new LiveSocket(wsUrl, authHeaders, setStatus);
const map = new EntryMap($("map"), "/static/vendor/world-110m.geojson");

for (const name of FILTERS) {
  $(name).onchange = () => {
    state[name] = $(name).value;
    view();
  };
}
$("clear").onclick = () => {
  for (const name of FILTERS) state[name] = "";
  view();
};
$("more").onclick = () => loadOlder().catch(showError);
$("key").value = key();
$("key-form").onsubmit = (event) => {
  event.preventDefault();
  localStorage.setItem("sitrep.key", $("key").value.trim());
  location.reload();
};
window.addEventListener("hashchange", () => {
  readHash();
  view();
});

readHash();
try {
  [blogs] = await Promise.all([loadBlogs(), loadCatalog()]);
  await view();
  document.body.dataset.ready = "yes";
} catch (error) {
  showError(error);
}
