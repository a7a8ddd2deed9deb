// Runs inside the dashboard page in headless Chromium (tests/it/dashboard.rs inlines it after
// axe.min.js, with PROBE_NAME set before it): measures the first screen, scrolls deep and reads
// where the column headers are, runs axe-core, drives the filter, and writes what it found as
// JSON into a <pre> at the end of the body for --dump-dom to carry out.
(async function () {
  const out = {};
  const vh = window.innerHeight;
  out.viewport = [window.innerWidth, vh];
  out.nodes = document.getElementsByTagName("*").length;
  const onScreen = (el) => {
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.bottom > 0 && r.top < vh;
  };
  const banner = document.querySelector(".banner");
  out.banner_on_first_screen = !!banner && onScreen(banner);
  out.banner_text = banner ? banner.textContent.replace(/\s+/g, " ").trim() : null;
  const blocked = [...document.querySelectorAll("#blocked tr[id^='b-']")];
  out.blocked_rows = blocked.length;
  out.blocked_on_first_screen = blocked.filter(onScreen).length;

  const table = document.querySelector("#pending table");
  if (table) {
    const rows = table.querySelectorAll("tr[id^='s-']");
    const deep = rows[Math.floor(rows.length * 0.75)];
    deep.scrollIntoView({ block: "center" });
    const th = table.querySelector("thead th");
    out.deep = {
      scroll_y: window.scrollY,
      row_top: deep.getBoundingClientRect().top,
      header_top: th.getBoundingClientRect().top,
      header_bottom: th.getBoundingClientRect().bottom,
      header_text: [...th.parentElement.cells].map((c) => c.textContent.trim()).join(" "),
    };
    window.scrollTo(0, 0);
  }

  const settled = document.getElementById("settled");
  if (window.axe) {
    // The folded rows are checked too.
    if (settled) { settled.open = true; }
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
      resultTypes: ["violations"],
    });
    out.axe_version = axe.version;
    out.violations = result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.length,
      examples: v.nodes.slice(0, 3).map((n) => n.html.slice(0, 200) + " :: " + n.failureSummary),
    }));
    if (settled) { settled.open = false; }
  }

  const form = document.getElementById("filter");
  out.filter_shown = !form.hidden;
  const visible = () => [...document.querySelectorAll("tr[id^='s-']")]
    .filter((r) => !r.hidden && !r.closest("tbody").hidden)
    .map((r) => r.cells[0].textContent.trim());
  const name = document.getElementById("filter-name");
  name.value = PROBE_NAME;
  name.dispatchEvent(new Event("input", { bubbles: true }));
  out.by_name = visible();
  out.by_name_status = document.getElementById("filter-status").textContent;
  out.settled_open_after_filter = settled ? settled.open : null;
  name.value = "";
  name.dispatchEvent(new Event("input", { bubbles: true }));
  const state = document.getElementById("filter-state");
  state.value = "blocked";
  state.dispatchEvent(new Event("change", { bubbles: true }));
  out.by_state = visible().length;
  out.by_state_status = document.getElementById("filter-status").textContent;

  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})().catch((error) => {
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify({ error: String(error && error.stack || error) });
  document.body.appendChild(pre);
});
