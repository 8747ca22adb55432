// faceprint web page: plain JavaScript, no build step, no network beyond this service.
// The API key lives only in sessionStorage (this tab); every call sends it as a Bearer token.
"use strict";

const KEY_STORE = "faceprint.apiKey";
const PAGE_SIZE = 24;
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

function getKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

async function api(path, options = {}) {
  const key = getKey();
  if (!key) throw new ApiError(401, "unauthorized", "Enter an API key first.", "");
  const headers = new Headers(options.headers || {});
  headers.set("Authorization", "Bearer " + key);
  let res;
  try {
    res = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new ApiError(0, "network", "The service cannot be reached.", "");
  }
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    const e = (body && body.error) || {};
    throw new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText,
                       (body && body.request_id) || res.headers.get("X-Request-ID") || "");
  }
  return res;
}

async function apiJSON(path, options) {
  return (await api(path, options)).json();
}

function jsonBody(method, value) {
  return { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) };
}

function say(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function sayError(err) {
  if (err instanceof ApiError) {
    const hint = err.status === 401 ? " Check the API key." : err.status === 403 ? " This key lacks the scope." : "";
    say(`${err.message} (${err.code}${err.requestId ? ", request " + err.requestId : ""}).${hint}`, true);
  } else {
    say(String(err && err.message ? err.message : err), true);
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const fmt = (x) => (x === null || x === undefined ? "-" : Number(x).toFixed(3));

// --- the key -----------------------------------------------------------------------------------
function showKeyState() {
  const key = getKey();
  $("key-state").textContent = key
    ? `Using key ${key.slice(0, 11)}... (kept in this tab only).`
    : "No key yet: it is kept only in this browser tab (sessionStorage).";
  $("api-key").value = "";
}

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const value = $("api-key").value.trim();
  if (!value) return;
  sessionStorage.setItem(KEY_STORE, value);
  showKeyState();
  try {
    await api("/v1/models");
    say("Key accepted.");
    loadPeople();
  } catch (err) {
    sayError(err);
  }
});

$("key-clear").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORE);
  showKeyState();
  $("people-list").replaceChildren();
  $("people-empty").hidden = false;
  say("Key forgotten.");
});

// --- identify ------------------------------------------------------------------------------------
let current = null; // { file, url, size: [w, h], faces }

function pickPhoto(file) {
  if (!file) return;
  if (current && current.url) URL.revokeObjectURL(current.url);
  current = { file, url: URL.createObjectURL(file), size: null, faces: [] };
  $("photo").src = current.url;
  $("boxes").replaceChildren();
  $("faces").replaceChildren();
  $("result").hidden = false;
  identify();
}

async function identify() {
  if (!current) return;
  const form = new FormData();
  form.append("image", current.file, current.file.name || "photo.jpg");
  say("Looking for faces...");
  try {
    const doc = await apiJSON("/v1/identify", { method: "POST", body: form });
    current.size = doc.image_size;
    current.faces = doc.faces;
    drawFaces();
    const known = doc.faces.filter((f) => f.identity).length;
    say(`${doc.faces.length} face(s) found, ${known} recognised.`);
  } catch (err) {
    sayError(err);
  }
}

function faceLabel(face) {
  return face.identity
    ? `${face.identity} ${fmt(face.similarity)}`
    : `Unknown${face.similarity !== null ? " (best " + fmt(face.similarity) + ")" : ""}`;
}

function drawFaces() {
  const [w, h] = current.size;
  const boxes = $("boxes");
  const list = $("faces");
  boxes.replaceChildren();
  list.replaceChildren();
  if (!current.faces.length) {
    list.append(el("li", { text: "No face found in this photo." }));
  }
  current.faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    const box = el("div", { class: "face-box " + (face.identity ? "known" : "unknown"), "data-face": String(i) },
                   el("span", { class: "tag", text: `${i + 1}. ${faceLabel(face)}` }));
    box.style.left = (100 * x1 / w) + "%";
    box.style.top = (100 * y1 / h) + "%";
    box.style.width = (100 * (x2 - x1) / w) + "%";
    box.style.height = (100 * (y2 - y1) / h) + "%";
    boxes.append(box);

    const nameInput = el("input", { type: "text", id: `enrol-name-${i}`, placeholder: "Name", autocomplete: "off",
                                    value: face.identity || "" });
    const enrolForm = el("form", { class: "enrol", "aria-label": `Enrol face ${i + 1}` },
      el("label", { class: "visually-hidden", for: `enrol-name-${i}`, text: `Name for face ${i + 1}` }),
      nameInput,
      el("button", { type: "submit", text: "Enrol this face" }));
    enrolForm.addEventListener("submit", (ev) => { ev.preventDefault(); enrolFace(i, nameInput.value.trim()); });
    const detail = face.identity
      ? `similarity ${fmt(face.similarity)} at threshold ${fmt(face.threshold)} (FAR ${face.far ?? "-"})`
      : `no one reaches threshold ${fmt(face.threshold)}`;
    list.append(el("li", { class: "face-item" },
      el("div", { class: "who", text: faceLabel(face) }),
      el("div", { class: "muted", text: detail }),
      ...(face.note ? [el("div", { class: "muted", text: face.note })] : []),
      enrolForm));
  });
}

async function cropFace(i) {
  // The face with a wide margin, so that the service finds exactly this one face in it.
  const img = $("photo");
  const [x1, y1, x2, y2] = current.faces[i].box;
  const [w, h] = current.size;
  const mx = (x2 - x1) * 0.6, my = (y2 - y1) * 0.6;
  const cx1 = Math.max(0, x1 - mx), cy1 = Math.max(0, y1 - my);
  const cx2 = Math.min(w, x2 + mx), cy2 = Math.min(h, y2 + my);
  const sx = img.naturalWidth / w, sy = img.naturalHeight / h;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(cx2 - cx1);
  canvas.height = Math.round(cy2 - cy1);
  canvas.getContext("2d").drawImage(img, cx1 * sx, cy1 * sy, (cx2 - cx1) * sx, (cy2 - cy1) * sy,
                                    0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.95));
}

async function subjectIdFor(name) {
  try {
    const created = await apiJSON("/v1/subjects", jsonBody("POST", { name, metadata: {} }));
    return created.id;
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== "subject_exists") throw err;
    const page = await apiJSON("/v1/subjects?name=" + encodeURIComponent(name));
    if (!page.subjects.length) throw err;
    return page.subjects[0].id;
  }
}

async function enrolFace(i, name) {
  if (!name) { say("Type a name first.", true); return; }
  say(`Enrolling face ${i + 1} as ${name}...`);
  try {
    const id = await subjectIdFor(name);
    const blob = current.faces.length === 1 ? current.file : await cropFace(i);
    const form = new FormData();
    form.append("images", blob, `face-${i + 1}.jpg`);
    const report = await apiJSON(`/v1/subjects/${id}/faces`, { method: "POST", body: form });
    if (report.enrolled.length) {
      say(`Enrolled face ${i + 1} as ${report.subject.name}.`);
    } else {
      const r = report.rejected[0];
      say(`Not enrolled: ${r.reason.message} (${r.reason.code}).`, true);
    }
    await loadPeople();
    await identify();
    if (report.enrolled.length) say(`Enrolled face ${i + 1} as ${report.subject.name}.`);
  } catch (err) {
    sayError(err);
  }
}

const photoInput = $("photo-input");
photoInput.addEventListener("change", () => pickPhoto(photoInput.files[0]));
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (ev) => { ev.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  const file = ev.dataTransfer && ev.dataTransfer.files[0];
  if (file) pickPhoto(file);
});

// --- people ------------------------------------------------------------------------------------
let peopleOffset = 0;
const thumbUrls = [];

async function loadPeople() {
  if (!getKey()) return;
  try {
    const page = await apiJSON(`/v1/subjects?limit=${PAGE_SIZE}&offset=${peopleOffset}`);
    if (!page.subjects.length && peopleOffset > 0) {
      peopleOffset = Math.max(0, peopleOffset - PAGE_SIZE);
      return loadPeople();
    }
    thumbUrls.splice(0).forEach((u) => URL.revokeObjectURL(u));
    const list = $("people-list");
    list.replaceChildren(...page.subjects.map(personItem));
    $("people-empty").hidden = page.subjects.length > 0;
    $("people-prev").disabled = peopleOffset === 0;
    $("people-next").disabled = peopleOffset + PAGE_SIZE >= page.total;
    $("people-page").textContent = page.total
      ? `${peopleOffset + 1}-${peopleOffset + page.subjects.length} of ${page.total}` : "";
    for (const s of page.subjects) loadThumb(s);
  } catch (err) {
    sayError(err);
  }
}

// A neutral placeholder (drawn by style.css) until a kept thumbnail arrives; the gallery keeps
// none unless the service was started with --keep-thumbnails, so it often stays.
function noThumb(s) {
  return el("div", { id: `thumb-${s.id}`, class: "nothumb", role: "img",
                     "aria-label": `No picture kept of ${s.name}`, title: "No face picture kept" });
}

function personItem(s) {
  const thumb = noThumb(s);
  const input = el("input", { type: "text", id: `rename-${s.id}`, value: s.name, autocomplete: "off" });
  const rename = el("form", { "aria-label": `Rename ${s.name}` },
    el("label", { class: "visually-hidden", for: `rename-${s.id}`, text: `New name for ${s.name}` }),
    input,
    el("button", { type: "submit", class: "secondary", text: "Rename" }));
  rename.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = input.value.trim();
    if (!name || name === s.name) return;
    try {
      await apiJSON(`/v1/subjects/${s.id}`, jsonBody("PATCH", { name }));
      say(`Renamed ${s.name} to ${name}.`);
      await loadPeople();
      await identify();
    } catch (err) {
      sayError(err);
    }
  });
  const forget = el("button", { type: "button", class: "danger", text: "Forget",
                                "aria-label": `Forget ${s.name}`, onclick: () => confirmForget(s) });
  return el("li", { class: "person", "data-subject": String(s.id) },
    thumb,
    el("div", {},
      el("div", { class: "name", text: s.name }),
      el("div", { class: "muted", text: `${s.face_count} face(s)` }),
      rename,
      el("div", { class: "enrol" }, forget)));
}

async function loadThumb(s) {
  if (s.thumbnail_face_id === null) return;
  try {
    const blob = await (await api(`/v1/subjects/${s.id}/faces/${s.thumbnail_face_id}/thumbnail`)).blob();
    const url = URL.createObjectURL(blob);
    thumbUrls.push(url);
    const img = el("img", { id: `thumb-${s.id}`, alt: `Face of ${s.name}`, class: "thumb" });
    // shown only once it has decoded: never a broken image
    img.addEventListener("load", () => { const spot = $(`thumb-${s.id}`); if (spot && spot !== img) spot.replaceWith(img); });
    img.src = url;
  } catch (_) { /* a missing thumbnail is not worth an error message: the placeholder stays */ }
}

function confirmForget(s) {
  const dialog = $("confirm");
  $("confirm-text").textContent =
    `${s.name} and their ${s.face_count} enrolled face(s) will be deleted for good. They will not be recognised again.`;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") { say(`${s.name} kept.`); return; }
    try {
      const doc = await apiJSON(`/v1/subjects/${s.id}`, { method: "DELETE" });
      say(`Forgot ${doc.name} (${doc.faces_removed} face(s) deleted).`);
      await loadPeople();
      await identify();
      say(`Forgot ${doc.name} (${doc.faces_removed} face(s) deleted).`);
    } catch (err) {
      sayError(err);
    }
  };
  dialog.showModal();
}

$("people-refresh").addEventListener("click", loadPeople);
$("people-prev").addEventListener("click", () => { peopleOffset = Math.max(0, peopleOffset - PAGE_SIZE); loadPeople(); });
$("people-next").addEventListener("click", () => { peopleOffset += PAGE_SIZE; loadPeople(); });

// --- verify ------------------------------------------------------------------------------------
for (const side of ["a", "b"]) {
  const input = $(`verify-${side}`);
  input.addEventListener("change", () => {
    const img = $(`preview-${side}`);
    if (img.src) URL.revokeObjectURL(img.src);
    if (input.files[0]) {
      img.src = URL.createObjectURL(input.files[0]);
      img.hidden = false;
    }
  });
}

$("verify-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const a = $("verify-a").files[0], b = $("verify-b").files[0];
  const out = $("verify-result");
  out.className = "verdict";
  if (!a || !b) { out.textContent = "Choose two photos."; return; }
  const form = new FormData();
  form.append("image_a", a, a.name);
  form.append("image_b", b, b.name);
  out.textContent = "Comparing...";
  try {
    const r = await apiJSON("/v1/verify", { method: "POST", body: form });
    out.classList.add(r.match ? "match" : "nomatch");
    out.textContent = `${r.match ? "Same person" : "Not the same person"}: similarity ${fmt(r.similarity)} ` +
      `${r.match ? "≥" : "<"} threshold ${fmt(r.threshold)}` + (r.far !== null ? ` (FAR ${r.far})` : "");
  } catch (err) {
    out.textContent = "";
    sayError(err);
  }
});

showKeyState();
loadPeople();
