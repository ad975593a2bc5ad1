// GraphiQL with the explorer plugin, from assets this server ships (no CDN). Queries go to
// /graphql over HTTP, subscriptions over graphql-transport-ws on the same path. A key saved
// on the live page (/) is sent as the Authorization header; edit it in the Headers tab.
(function () {
  const url = new URL("/graphql", location.origin).toString();
  const key = localStorage.getItem("sitrep.key");
  const fetcher = GraphiQL.createFetcher({
    url,
    subscriptionUrl: url.replace(/^http/, "ws"),
    wsConnectionParams: key ? { Authorization: `Bearer ${key}` } : {},
  });
  const defaultQuery = `# Run: the play button or Ctrl-Enter.
# Explorer (left): tick fields to build.
# Docs: the book icon.
{
  entries(first: 5) {
    totalCount
    nodes { publishedAt headline actors { role actor { name } } locations { name } }
  }
}
`;
  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      plugins: [explorer],
      visiblePlugin: explorer,
      defaultQuery,
      defaultHeaders: key ? JSON.stringify({ Authorization: `Bearer ${key}` }, null, 2) : undefined,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
