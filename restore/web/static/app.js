// restore's page: the HTTP API (/api/v1) driven from a form. No framework, no build step,
// nothing fetched from another host.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const state = { task: "denoise", files: [], current: 0, masks: new Map(), weights: [] };

function selectTask(task) {
  state.task = task;
  for (const tab of document.querySelectorAll("#tasks button")) {
    tab.setAttribute("aria-selected", String(tab.dataset.task === task));
  }
  for (const set of document.querySelectorAll("fieldset[data-for]")) set.hidden = set.dataset.for !== task;
  fillWeights();
  showMaskEditor();
}

async function loadWeights() {
  const answer = await fetch("/api/v1/weights");
  state.weights = answer.ok ? await answer.json() : [];
  fillWeights();
}

function fillWeights() {
  const select = $("#weights");
  select.replaceChildren(new Option("default for each image", ""));
  for (const entry of state.weights.filter((w) => w.task === state.task)) {
    const label = `${entry.name} (${entry.origin}${entry.description ? ": " + entry.description : ""})`;
    select.add(new Option(label.length > 70 ? label.slice(0, 67) + "..." : label, entry.name));
  }
}

function addFiles(list) {
  state.files.push(...Array.from(list));
  const items = state.files.map((file, index) => {
    const item = document.createElement("li");
    item.textContent = file.name;
    item.classList.toggle("current", index === state.current);
    item.addEventListener("click", () => { state.current = index; addFiles([]); });
    return item;
  });
  $("#file-list").replaceChildren(...items);
  showMaskEditor();
}

// ---- the mask painted on the current image (inpaint) ----

function maskCanvasFor(index) {
  if (!state.masks.has(index)) state.masks.set(index, { painted: false, data: null });
  return state.masks.get(index);
}

function showMaskEditor() {
  const editor = $("#mask-editor");
  const file = state.files[state.current];
  editor.hidden = state.task !== "inpaint" || !file;
  if (editor.hidden) return;
  $("#mask-name").textContent = file.name;
  const image = $("#mask-image");
  const canvas = $("#mask-canvas");
  image.onload = () => {
    const mask = maskCanvasFor(state.current);
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d");
    if (mask.data) context.putImageData(mask.data, 0, 0);
    else { context.fillStyle = "#000"; context.fillRect(0, 0, canvas.width, canvas.height); }
  };
  previewUrl(file).then((url) => { image.src = url; });
}

function paintMask() {
  const canvas = $("#mask-canvas");
  let drawing = false;
  const dab = (event) => {
    const box = canvas.getBoundingClientRect();
    const x = (event.clientX - box.left) * canvas.width / box.width;
    const y = (event.clientY - box.top) * canvas.height / box.height;
    const radius = Number($("#brush").value) * canvas.width / box.width / 2;
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fill();
    const mask = maskCanvasFor(state.current);
    mask.painted = true;
    mask.data = context.getImageData(0, 0, canvas.width, canvas.height);
  };
  canvas.addEventListener("pointerdown", (event) => { drawing = true; canvas.setPointerCapture(event.pointerId); dab(event); });
  canvas.addEventListener("pointermove", (event) => { if (drawing) dab(event); });
  canvas.addEventListener("pointerup", () => { drawing = false; });
  $("#clear-mask").addEventListener("click", () => { state.masks.delete(state.current); showMaskEditor(); });
}

function maskBlob(index) {
  const uploaded = $("#mask-file").files[0];
  if (uploaded) return Promise.resolve(uploaded);
  const mask = state.masks.get(index);
  if (!mask || !mask.painted) return Promise.resolve(null);
  const canvas = document.createElement("canvas");
  canvas.width = mask.data.width;
  canvas.height = mask.data.height;
  canvas.getContext("2d").putImageData(mask.data, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// ---- running the task on each file ----

function optionFields() {
  // the task's own controls (the scan command's only) and the model's: enabled, named, set
  const fields = new FormData();
  const sets = [$(`fieldset[data-for="${state.task}"]`), $("#model")];
  for (const element of sets.flatMap((set) => Array.from(set.querySelectorAll("[name]")))) {
    const command = element.closest("[data-command]");
    if (command && command.dataset.command !== $("#scan-command").value) continue;
    if (element.type === "checkbox" && !element.checked) continue;
    if (!element.disabled && element.value !== "") fields.append(element.name, element.value);
  }
  if (state.task === "denoise" && $("#sigma-auto").checked) fields.set("sigma", "auto");
  return fields;
}

function route() {
  return state.task === "medical" ? `/api/v1/medical/${$("#scan-command").value}` : `/api/v1/${state.task}`;
}

async function previewUrl(blob, reference = null) {
  // what the browser can show as it is, else the server's 8-bit PNG rendering (TIFF, 16-bit);
  // a scan always through the server: its middle slice, in the input's (reference's) window
  const scan = state.task === "medical";
  const direct = URL.createObjectURL(blob);
  const shown = !scan && await new Promise((resolve) => {
    const probe = new Image();
    probe.onload = () => resolve(true);
    probe.onerror = () => resolve(false);
    probe.src = direct;
  });
  if (shown) return direct;
  const body = new FormData();
  body.append("image", blob, blob.name || "image.tif");
  if (scan) {
    body.append("scan", "true");
    if (reference) body.append("reference", reference, reference.name);
  }
  const answer = await fetch("/api/v1/preview", { method: "POST", body });
  return answer.ok ? URL.createObjectURL(await answer.blob()) : direct;
}

function detail(json) {
  if (typeof json.detail === "string") return json.detail;
  return (json.detail || []).map((item) => `${(item.loc || []).slice(1).join(".")}: ${item.msg}`).join("\n");
}

async function runOne(file, index) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = file.name;
  const status = $(".status", card);
  $("#results").prepend(card);
  const started = performance.now();
  status.classList.add("busy");
  // the server says how many tiles (slices) of the image are done: GET /api/v1/progress/{id}
  const progressId = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  let parts = "";
  const tick = setInterval(() => { status.textContent = `running ${parts}${((performance.now() - started) / 1000).toFixed(1)} s`; }, 200);
  const poll = setInterval(async () => {
    const answer = await fetch(`/api/v1/progress/${progressId}`);
    if (!answer.ok) return;
    const progress = await answer.json();
    if (progress.total > 1) parts = `${progress.unit} ${progress.done}/${progress.total}, `;
  }, 500);
  try {
    const body = optionFields();
    body.append("image", file, file.name);
    if (state.task === "inpaint") {
      const mask = await maskBlob(index);
      if (mask) body.append("mask", mask, mask.name || "mask.png");
    }
    const answer = await fetch(`${route()}?progress=${progressId}`, { method: "POST", body });
    if (!answer.ok) {
      const text = await answer.text();
      let reason = text;
      try { reason = detail(JSON.parse(text)); } catch (_) { /* not JSON */ }
      const retry = answer.headers.get("Retry-After");
      throw new Error(`${answer.status}: ${reason}${retry ? ` (retry in ${retry} s)` : ""}`);
    }
    const output = await answer.blob();
    const report = JSON.parse(answer.headers.get("X-Restore-Report") || "{}");
    await showResult(card, file, output, report);
    status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (error) {
    $(".error", card).hidden = false;
    $(".error", card).textContent = error.message;
    status.textContent = "failed";
  } finally {
    clearInterval(tick);
    clearInterval(poll);
    status.classList.remove("busy");
  }
}

async function showResult(card, file, output, report) {
  const named = new File([output], report.output || file.name);
  const [before, after] = await Promise.all([previewUrl(file), previewUrl(named, file)]);
  $(".before", card).src = before;
  $(".after", card).src = after;
  const link = $(".download", card);
  link.href = URL.createObjectURL(output);
  link.download = report.output || file.name;
  $(".report", card).textContent = JSON.stringify(report, null, 2);
  const slider = $(".slider", card);
  slider.addEventListener("input", () => {
    $(".before-clip", card).style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
    $(".divider", card).style.left = `${slider.value}%`;
  });
  $(".zoom", card).addEventListener("click", (event) => {
    const zoomed = $(".compare", card).classList.toggle("zoomed");
    event.target.textContent = zoomed ? "Fit" : "Zoom 100 %";
  });
  $(".compare", card).hidden = false;
}

async function runAll(event) {
  event.preventDefault();
  if (!state.files.length) { $("#drop").classList.add("over"); return; }
  $("#run").disabled = true;
  try {
    for (const [index, file] of state.files.entries()) await runOne(file, index);
  } finally {
    $("#run").disabled = false;
  }
}

function wire() {
  for (const tab of document.querySelectorAll("#tasks button")) tab.addEventListener("click", () => selectTask(tab.dataset.task));
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); addFiles(event.dataTransfer.files); });
  $("#files").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
  $("#sigma-auto").addEventListener("change", (event) => { $("#sigma").disabled = event.target.checked; });
  for (const strength of document.querySelectorAll("[name=strength]")) {
    strength.addEventListener("input", () => { strength.nextElementSibling.textContent = strength.value; });
  }
  $("#scan-command").addEventListener("change", (event) => {
    for (const label of document.querySelectorAll("[data-command]")) label.hidden = label.dataset.command !== event.target.value;
  });
  $("#options").addEventListener("submit", runAll);
  paintMask();
  loadWeights();
}

wire();
