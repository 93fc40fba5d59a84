// The batch page: rows from the embedded report data, rendered a chunk at a time as the
// list scrolls (a 1000-image batch opens at once), thumbnails lazy-loaded, and one
// before/after viewer for the selected row, so the page holds two large pictures at most.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const rows = data.rows.map((row, index) => Object.assign({ index: index }, row));
  const CHUNK = 100;
  const STATUS_ORDER = { failed: 0, done: 1, skipped: 2 };
  const $ = (id) => document.getElementById(id);
  const list = $("rows"), sentinel = $("more"), compare = $("compare"), split = $("split");
  const before = $("before"), after = $("after"), handle = $("handle");
  let shown = [], rendered = 0, selected = null, filter = "all", query = "", sortKey = "name";

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function shownValue(value) {
    return value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function fillTable(table, pairs) {
    table.textContent = "";
    for (const [key, value] of pairs) {
      const line = table.insertRow();
      line.appendChild(element("th", "", key));
      const cell = line.insertCell();
      if (value instanceof Node) cell.appendChild(value); else cell.textContent = shownValue(value);
    }
  }

  function seconds(row) {
    return typeof row.seconds === "number" ? row.seconds.toFixed(2) + " s" : "";
  }

  // -- the run ---------------------------------------------------------------------------
  function renderRun() {
    document.title = data.title;
    $("title").textContent = data.title;
    const counts = ["done", "skipped", "failed"].map((s) => (data.summary[s] || 0) + " " + s);
    const warned = rows.filter((row) => row.warning).length;
    $("summary").textContent = counts.join(", ") + (warned ? ", " + warned + " with a warning" : "") +
      (data.version ? " \u00b7 restore " + data.version : "");
    if (!data.complete) {
      $("summary").prepend(element("span", "banner", "Incomplete run (interrupted, or still running). "));
    }
    for (const warning of data.warnings) $("run-warnings").appendChild(element("li", "", warning));
    const pairs = Object.entries(data.settings).concat(Object.entries(data.execution));
    fillTable(document.querySelector("#run-settings table"), pairs);
    for (const button of document.querySelectorAll("#filters button")) {
      const kind = button.dataset.filter;
      const count = kind === "all" ? rows.length :
        rows.filter((row) => (kind === "warnings" ? row.warning : row.status === kind)).length;
      button.textContent += " (" + count + ")";
    }
  }

  // -- the list ----------------------------------------------------------------------------
  function matches(row) {
    if (filter === "warnings" ? !row.warning : filter !== "all" && row.status !== filter) return false;
    return !query || row.name.toLowerCase().includes(query);
  }

  function compareRows(a, b) {
    if (sortKey === "time") return (b.seconds || 0) - (a.seconds || 0) || a.name.localeCompare(b.name);
    if (sortKey === "status") {
      const rank = (row) => (row.warning && row.status !== "failed" ? 0.5 : STATUS_ORDER[row.status] ?? 3);
      return rank(a) - rank(b) || a.name.localeCompare(b.name);
    }
    return a.name.localeCompare(b.name);
  }

  function rowElement(row) {
    const item = element("li", "row " + row.status);
    item.dataset.index = row.index;
    item.tabIndex = 0;
    item.setAttribute("aria-selected", row === selected ? "true" : "false");
    if (row.thumb) {
      const thumb = element("img", "thumb");
      thumb.loading = "lazy";
      thumb.decoding = "async";
      thumb.alt = "";
      thumb.src = row.thumb;
      item.appendChild(thumb);
    } else {
      item.appendChild(element("span", "nothumb", "none"));
    }
    const name = element("span", "name", row.name);
    name.title = row.name;
    name.appendChild(element("span", "badge " + row.status, row.status));
    if (row.warning) name.appendChild(element("span", "badge warning", "warning"));
    item.appendChild(name);
    item.appendChild(element("span", "secs", seconds(row)));
    const reason = row.reason || row.warning || row.note || "";
    item.appendChild(element("span", "reason" + (row.warning && !row.reason ? " warn" : ""), reason));
    return item;
  }

  function renderMore() {
    const end = Math.min(shown.length, rendered + CHUNK);
    const fragment = document.createDocumentFragment();
    for (let i = rendered; i < end; i++) fragment.appendChild(rowElement(shown[i]));
    list.appendChild(fragment);
    rendered = end;
  }

  function refresh() {
    shown = rows.filter(matches).sort(compareRows);
    list.textContent = "";
    rendered = 0;
    renderMore();
    $("count").textContent = shown.length + " of " + rows.length + " shown";
    if (!selected || !shown.includes(selected)) select(shown.find((row) => row.after) || shown[0] || null);
  }

  new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && rendered < shown.length) renderMore();
  }, { rootMargin: "600px" }).observe(sentinel);

  // -- the viewer --------------------------------------------------------------------------
  function setSplit(percent) {
    const value = Math.min(100, Math.max(0, percent));
    before.style.clipPath = "inset(0 " + (100 - value) + "% 0 0)";
    handle.style.left = value + "%";
    split.value = value;
  }

  function link(href, text) {
    if (!href) return text || "";
    const anchor = element("a", "", text);
    anchor.href = href;
    return anchor;
  }

  function select(row) {
    selected = row;
    for (const item of list.querySelectorAll('[aria-selected="true"]')) item.setAttribute("aria-selected", "false");
    if (!row) {
      $("viewer-name").textContent = "No image matches";
      compare.hidden = split.hidden = true;
      return;
    }
    const item = list.querySelector('[data-index="' + row.index + '"]');
    if (item) item.setAttribute("aria-selected", "true");
    $("viewer-name").textContent = row.name;
    const picture = Boolean(row.after);
    compare.hidden = split.hidden = !picture;
    if (picture) {
      compare.style.aspectRatio = row.width + " / " + row.height;
      compare.style.maxWidth = split.style.maxWidth = "calc(70vh * " + row.width / row.height + ")";
      compare.classList.toggle("checker", Boolean(row.alpha));
      before.src = row.before;
      after.src = row.after;
    } else {
      before.removeAttribute("src");
      after.removeAttribute("src");
    }
    $("note").textContent = row.note || "";
    const pairs = [["status", row.status + (row.warning ? " (warning)" : "")]];
    if (row.reason) pairs.push(["reason", row.reason]);
    if (row.warning) pairs.push(["warning", row.warning]);
    pairs.push(["time", seconds(row)]);
    pairs.push(["input", link(row.href_input, row.input)]);
    if (row.output) pairs.push(["output", link(row.href_output, row.output)]);
    for (const [key, value] of Object.entries(row.info || {})) if (key !== "warning") pairs.push([key, value]);
    fillTable($("details"), pairs);
  }

  function step(offset) {
    const position = shown.indexOf(selected) + offset;
    if (position < 0 || position >= shown.length) return;
    while (position >= rendered) renderMore();
    select(shown[position]);
    const item = list.querySelector('[data-index="' + shown[position].index + '"]');
    if (item) item.scrollIntoView({ block: "nearest" });
  }

  // -- events --------------------------------------------------------------------------------
  list.addEventListener("click", (event) => {
    const item = event.target.closest(".row");
    if (item) select(rows[Number(item.dataset.index)]);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input, select")) return;
    if (event.key === "j" || event.key === "ArrowDown") { step(1); event.preventDefault(); }
    if (event.key === "k" || event.key === "ArrowUp") { step(-1); event.preventDefault(); }
  });
  $("filters").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    filter = button.dataset.filter;
    for (const other of $("filters").children) other.setAttribute("aria-pressed", String(other === button));
    refresh();
  });
  $("search").addEventListener("input", (event) => { query = event.target.value.trim().toLowerCase(); refresh(); });
  $("sort").addEventListener("change", (event) => { sortKey = event.target.value; refresh(); });
  split.addEventListener("input", () => setSplit(Number(split.value)));
  function drag(event) {
    if (event.type === "pointermove" && !event.buttons) return;
    const box = compare.getBoundingClientRect();
    setSplit(((event.clientX - box.left) / box.width) * 100);
  }
  compare.addEventListener("pointerdown", (event) => { compare.setPointerCapture(event.pointerId); drag(event); });
  compare.addEventListener("pointermove", drag);

  renderRun();
  setSplit(50);
  refresh();
})();
