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

async function api(path, options = {}, key = getKey()) {
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
    const err = new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText,
                             (body && body.request_id) || res.headers.get("X-Request-ID") || "");
    // the key in use was turned down (revoked, or never valid): say so where the key is shown
    if (res.status === 401 && key === getKey()) refuseKey(key, err);
    throw err;
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
// Only the key's public part is ever shown: "fp_" and its id.
const keyName = (key) => key.slice(0, 11) + "…";

/** The header's line about the key: state is "none", "checking", "ok", "refused" or "unchecked". */
function showKeyState(state, key = "", detail = "") {
  const line = $("key-state");
  line.dataset.state = state;
  line.classList.toggle("refused", state === "refused");
  line.textContent = {
    none: "No key yet: it is kept only in this browser tab (sessionStorage).",
    checking: `Checking key ${keyName(key)}`,
    ok: `Using key ${keyName(key)} (kept in this tab only).`,
    refused: `Key ${keyName(key)} was refused by the service${detail ? " (" + detail + ")" : ""}: enter a valid key.`,
    unchecked: `Key ${keyName(key)} kept but not checked: ${detail}`,
  }[state];
}

function clearPeople() {
  $("people-list").replaceChildren();
  $("people-empty").hidden = false;
  $("people-page").textContent = "";
}

/** A key the service turned down: never kept, never shown as in use. */
function refuseKey(key, err) {
  if (getKey() === key) sessionStorage.removeItem(KEY_STORE);
  showKeyState("refused", key, err.code);
  clearPeople();
}

/** Checks ``key`` with the cheapest call that needs one (any valid key may list the models) and
 * keeps it only if the service accepts it. */
async function useKey(key) {
  showKeyState("checking", key);
  try {
    await api("/v1/models", {}, key);
  } catch (err) {
    if (err.status === 401) {
      refuseKey(key, err);
    } else {
      // not a verdict on the key (the service unreachable, rate limited): keep it, say so
      sessionStorage.setItem(KEY_STORE, key);
      showKeyState("unchecked", key, err.message);
    }
    sayError(err);
    return false;
  }
  sessionStorage.setItem(KEY_STORE, key);
  showKeyState("ok", key);
  return true;
}

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const value = $("api-key").value.trim();
  if (!value) return;
  $("api-key").value = "";
  if (await useKey(value)) {
    say("Key accepted.");
    loadPeople();
  }
});

$("key-clear").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORE);
  showKeyState("none");
  clearPeople();
  say("Key forgotten.");
});

// --- identify ------------------------------------------------------------------------------------
// The photo on screen: { file, url, shown (a promise: can this browser display it?), size, faces,
// identified (the service has read it) }. A reply for a photo that is no longer `current` is dropped.
let current = null;

function pickPhoto(file) {
  if (!file) return;
  if (current && current.url) URL.revokeObjectURL(current.url);
  const img = $("photo");
  const url = URL.createObjectURL(file);
  img.src = url;
  current = { file, url, shown: img.decode().then(() => true, () => false), size: null, faces: [], identified: false };
  // nothing of the last photo stays, and nothing of this one shows before the service has read it
  $("result").hidden = true;
  $("boxes").replaceChildren();
  $("faces").replaceChildren();
  identify();
}

/** Asks the service who is in the current photo and shows it; the status line tells how it went. */
async function identify() {
  const photo = current;
  if (!photo) return;
  say("Looking for faces...");
  try {
    await readPhoto(photo);
    if (photo !== current) return;
    const known = photo.faces.filter((f) => f.identity).length;
    say(`${photo.faces.length} face(s) found, ${known} recognised.`);
  } catch (err) {
    if (photo !== current) return;
    // the error alone: no broken image (hidden or not), no empty list
    $("result").hidden = true;
    $("photo").removeAttribute("src");
    sayError(err);
  }
}

/** After the gallery changed (enrol, rename, forget): the names on the photo already shown,
 * redrawn without touching the status line. Returns a sentence to add to the caller's message
 * when that failed, else "". A photo the service could not read is not asked about again. */
async function refreshPhoto() {
  const photo = current;
  if (!photo || !photo.identified) return "";
  try {
    await readPhoto(photo);
    return "";
  } catch (err) {
    return ` The names on the photo could not be updated: ${err.message}.`;
  }
}

async function readPhoto(photo) {
  const form = new FormData();
  form.append("image", photo.file, photo.file.name || "photo.jpg");
  const doc = await apiJSON("/v1/identify", { method: "POST", body: form });
  const shown = await photo.shown;
  if (photo !== current) return;
  photo.size = doc.image_size;
  photo.faces = doc.faces;
  photo.identified = true;
  if (!shown) $("photo").removeAttribute("src");
  $("stage").hidden = !shown;
  $("no-view").hidden = shown;
  $("result").hidden = false;
  drawFaces();
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
  $("faces-none").hidden = current.faces.length > 0;
  list.hidden = !current.faces.length;
  current.faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    const box = el("div", { class: "face-box " + (face.identity ? "known" : "unknown"), "data-face": String(i) },
                   el("span", { class: "num", text: String(i + 1) }),
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
  layoutTags();
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** Places each box's name tag where it covers no other tag: just above its box, else just below,
 * else inside its top edge, else stacked further above or below (in a group photo of close faces).
 * A tag moved away from its box is tied to it by the number shown in the box's corner. */
function layoutTags() {
  const stage = $("stage");
  const sw = stage.clientWidth, sh = stage.clientHeight;
  if (!sw || !sh) return;  // not on screen: laid out when it is (the resize observer)
  const origin = stage.getBoundingClientRect();
  const items = [...$("boxes").querySelectorAll(".face-box")].map((box) => {
    const r = box.getBoundingClientRect();
    return { box, tag: box.querySelector(".tag"), num: box.querySelector(".num"),
             x: r.left - origin.left, y: r.top - origin.top, w: r.width, h: r.height };
  }).sort((a, b) => a.y - b.y || a.x - b.x);
  const placed = [];
  for (const it of items) {
    const { tag } = it;
    tag.style.maxWidth = sw + "px";
    const w = tag.offsetWidth, h = tag.offsetHeight;
    const x = Math.max(0, Math.min(it.x, sw - w));
    const above = (k) => ({ x, y: it.y - h * (k + 1) - k, w, h, near: k === 0 });
    const below = (k) => ({ x, y: it.y + it.h + h * k + k, w, h, near: k === 0 });
    const candidates = [above(0), below(0), { x, y: it.y + it.box.clientTop, w, h, near: true }];
    for (let k = 1; k <= items.length; k++) candidates.push(above(k), below(k));
    const inside = (c) => c.y >= 0 && c.y + c.h <= sh;
    const free = (c) => !placed.some((p) => overlaps(p, c));
    const spot = candidates.find((c) => inside(c) && free(c)) || candidates.find(free) || candidates[0];
    placed.push(spot);
    // the tag is positioned inside its box's border
    tag.style.left = (spot.x - it.x - it.box.clientLeft) + "px";
    tag.style.top = (spot.y - it.y - it.box.clientTop) + "px";
    tag.style.bottom = "auto";
    it.num.hidden = spot.near;
  }
}

new ResizeObserver(layoutTags).observe($("stage"));

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
    await loadPeople();
    if (!report.enrolled.length) {
      const r = report.rejected[0];
      say(`Not enrolled: ${r.reason.message} (${r.reason.code}).`, true);
      return;
    }
    const note = await refreshPhoto();
    say(`Enrolled face ${i + 1} as ${report.subject.name}.${note}`, !!note);
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
      const renamed = await apiJSON(`/v1/subjects/${s.id}`, jsonBody("PATCH", { name }));
      await loadPeople();
      // the message comes last, so that nothing redrawn after the rename covers it
      const note = await refreshPhoto();
      say(`Renamed ${s.name} to ${renamed.name}.${note}`, !!note);
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
      await loadPeople();
      const note = await refreshPhoto();
      say(`Forgot ${doc.name} (${doc.faces_removed} face(s) deleted).${note}`, !!note);
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
const SIDES = ["a", "b"];

/** Clears what a comparison drew: the compared faces' boxes, their lines and the verdict. */
function clearComparison() {
  for (const side of SIDES) {
    $(`vbox-${side}`).hidden = true;
    $(`vface-${side}`).textContent = "";
  }
  $("verify-result").textContent = "";
  $("verify-result").className = "verdict";
}

for (const side of SIDES) {
  const input = $(`verify-${side}`);
  input.addEventListener("change", () => {
    const img = $(`preview-${side}`);
    const holder = $(`vstage-${side}`);
    if (img.src) URL.revokeObjectURL(img.src);
    holder.hidden = true;
    clearComparison();
    const file = input.files[0];
    if (!file) return;
    img.src = URL.createObjectURL(file);
    // shown once it has decoded: never a broken image
    img.decode().then(() => { if (img.src && input.files[0] === file) holder.hidden = false; },
                      () => {
                        if (input.files[0] !== file) return;
                        img.removeAttribute("src");
                        $(`vface-${side}`).textContent = "This browser cannot display this file.";
                      });
  });
}

const SELECTION = { only: "the only face found", largest: "the largest", index: "as asked" };

/** Outlines on each photo the face that was compared, and says which of how many it was. */
function showCompared(faces) {
  SIDES.forEach((side, i) => {
    const face = faces[i];
    if (!face) return;
    const img = $(`preview-${side}`);
    const [x1, y1, x2, y2] = face.box;
    const w = img.naturalWidth, h = img.naturalHeight;
    const which = face.faces_found > 1
      ? `face ${face.face_index + 1} of ${face.faces_found} (${SELECTION[face.selection] || face.selection})`
      : "the only face found";
    $(`vface-${side}`).textContent = `Compared ${which}.`;
    const box = $(`vbox-${side}`);
    if (!w || !h) return;  // not displayed
    box.style.left = (100 * x1 / w) + "%";
    box.style.top = (100 * y1 / h) + "%";
    box.style.width = (100 * (x2 - x1) / w) + "%";
    box.style.height = (100 * (y2 - y1) / h) + "%";
    box.querySelector(".tag").textContent = face.faces_found > 1 ? `${face.face_index + 1} of ${face.faces_found}` : "compared";
    box.hidden = false;
  });
}

$("verify-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const a = $("verify-a").files[0], b = $("verify-b").files[0];
  const out = $("verify-result");
  clearComparison();
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
    showCompared(r.faces);
  } catch (err) {
    out.textContent = "";
    sayError(err);
  }
});

// --- start ---------------------------------------------------------------------------------------
// A key kept in this tab from before a reload is checked again, like a newly entered one.
if (getKey()) {
  useKey(getKey()).then((ok) => { if (ok) loadPeople(); });
} else {
  showKeyState("none");
}
