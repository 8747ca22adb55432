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

// --- webcam panels ---------------------------------------------------------------------------------
// Each panel opens the camera (getUserMedia), draws its frames onto a canvas and sends them as JPEGs,
// one at a time (the next once the service has answered), while it runs. The preview is mirrored by
// CSS only: the frames sent are the camera's own, so "your left" means the same to the service.
const FRAME_MAX_WIDTH = 640;
const MIN_FRAME_GAP_MS = 120;  // at most ~8 frames a second, well inside the key's rate limit
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function openCamera(video) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("This browser gives this page no camera (it needs https, or this machine's own address).");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } },
                                                         audio: false });
  } catch (err) {
    throw new Error(`The camera could not be opened: ${err && err.message ? err.message : err}.`);
  }
  video.srcObject = stream;
  await video.play();
  if (!video.videoWidth) await new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
  return stream;
}

function closeCamera(video, stream) {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
}

/** The camera's current frame as a JPEG (at most FRAME_MAX_WIDTH wide), as the camera sees it. */
function grabFrame(video, canvas) {
  const scale = Math.min(1, FRAME_MAX_WIDTH / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

/** Waits so that frames are sent at most every MIN_FRAME_GAP_MS (a rate-limited key waits longer). */
async function pace(startedAt, err) {
  if (err && err.status === 429) await sleep(1000);
  const gap = MIN_FRAME_GAP_MS - (performance.now() - startedAt);
  if (gap > 0) await sleep(gap);
}

/** Whether an error ends a panel's run (no key, no scope, the session gone) rather than one frame. */
const endsRun = (err) => !(err instanceof ApiError) || [0, 401, 403, 404, 409, 410].includes(err.status);

// --- live identify ---
const live = { id: null, stream: null };

function liveState(text) { $("live-state").textContent = text; }

async function startLive() {
  if (!getKey()) { say("Enter an API key first.", true); return; }
  $("live-start").disabled = true;
  try {
    live.stream = await openCamera($("live-video"));
    const doc = await apiJSON("/v1/streams", jsonBody("POST", {}));
    live.id = doc.stream_id;
  } catch (err) {
    closeCamera($("live-video"), live.stream);
    live.stream = null;
    $("live-start").disabled = false;
    sayError(err);
    return;
  }
  $("live-stage").hidden = false;
  $("live-stop").disabled = false;
  liveState("Camera on: looking for faces...");
  liveLoop(live.id);
}

async function liveLoop(id) {
  const video = $("live-video"), canvas = document.createElement("canvas");
  while (live.id === id) {
    const started = performance.now();
    let failure = null;
    try {
      const form = new FormData();
      form.append("image", await grabFrame(video, canvas), "frame.jpg");
      const doc = await apiJSON(`/v1/streams/${id}/frames`, { method: "POST", body: form });
      if (live.id === id) drawLive(doc);
    } catch (err) {
      failure = err;
      if (live.id !== id) return;
      sayError(err);
      if (endsRun(err)) { stopLive(false); return; }
    }
    await pace(started, failure);
  }
}

function trackLabel(t) {
  return t.identity ? `${t.identity} ${fmt(t.similarity)}` : `Unknown (track ${t.track})`;
}

/** The tracked faces on the preview (boxes in % of the frame, so they follow its size) and listed. */
function drawLive(doc) {
  const [w, h] = doc.image_size;
  const boxes = $("live-boxes");
  boxes.replaceChildren(...doc.tracks.map((t) => {
    const [x1, y1, x2, y2] = t.box;
    const box = el("div", { class: "face-box " + (t.identity ? "known" : "unknown"), "data-track": String(t.track) },
                   el("span", { class: "tag", text: trackLabel(t) }));
    box.style.left = (100 * x1 / w) + "%";
    box.style.top = (100 * y1 / h) + "%";
    box.style.width = (100 * (x2 - x1) / w) + "%";
    box.style.height = (100 * (y2 - y1) / h) + "%";
    return box;
  }));
  $("live-names").replaceChildren(...doc.tracks.map((t) => el("li", {}, el("span", { class: "who", text: trackLabel(t) }))));
  $("live-none").hidden = doc.tracks.length > 0;
  const named = doc.tracks.filter((t) => t.identity).length;
  liveState(`Camera on: ${doc.tracks.length} face(s) in view, ${named} recognised.`);
}

async function stopLive(tell = true) {
  const id = live.id;
  live.id = null;
  closeCamera($("live-video"), live.stream);
  live.stream = null;
  $("live-stage").hidden = true;
  $("live-boxes").replaceChildren();
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
  liveState("Camera off.");
  if (id) {
    try { await api(`/v1/streams/${id}`, { method: "DELETE" }); } catch (_) { /* already gone */ }
  }
  if (tell) say("Live identify stopped.");
}

$("live-start").addEventListener("click", startLive);
$("live-stop").addEventListener("click", () => stopLive());

// --- liveness ---
// The service reveals the challenge one step at a time (the pending step's prompt); the page lists
// the steps seen so far and how many remain.
const check = { id: null, stream: null, seq: 0, total: 0, prompts: [], deadline: 0, timer: null };

function livenessState(text) { $("liveness-state").textContent = text; }

/** The steps known so far, the done ones ticked and the current one marked, then what remains. */
function drawSteps(current) {
  const items = check.prompts.map((prompt, i) => el("li", {
    class: i < current ? "done" : i === current ? "current" : "",
    text: (i < current ? "✓ " : "") + prompt,
  }));
  const more = check.total - check.prompts.length;
  if (more > 0) items.push(el("li", { class: "muted", text: `${more} more step(s) to come` }));
  $("liveness-steps").replaceChildren(...items);
}

function showProgress(progress) {
  if (!progress) return;
  const step = Number.isInteger(progress.step) ? progress.step : 0;
  if (progress.prompt) {
    check.prompts[step] = progress.prompt;
    $("liveness-prompt").textContent = progress.prompt;
  }
  drawSteps(step);
}

function tick() {
  const left = Math.max(0, Math.ceil((check.deadline - performance.now()) / 1000));
  livenessState(`Checking: ${left} s left.`);
}

async function startLiveness() {
  if (!getKey()) { say("Enter an API key first.", true); return; }
  $("liveness-start").disabled = true;
  $("liveness-verdict").textContent = "";
  $("liveness-verdict").className = "verdict";
  $("liveness-detail").textContent = "";
  try {
    check.stream = await openCamera($("liveness-video"));
    const doc = await apiJSON("/v1/liveness/sessions", { method: "POST" });
    check.id = doc.session_id;
    check.total = doc.challenge.steps;
    check.prompts = [doc.challenge.prompt];
    check.seq = 0;
    check.deadline = performance.now() + doc.expires_in_s * 1000;
  } catch (err) {
    closeCamera($("liveness-video"), check.stream);
    check.stream = null;
    $("liveness-start").disabled = false;
    sayError(err);
    return;
  }
  $("liveness-stage").hidden = false;
  $("liveness-stop").disabled = false;
  drawSteps(0);
  $("liveness-prompt").textContent = check.prompts[0];
  check.timer = setInterval(tick, 250);
  tick();
  livenessLoop(check.id);
}

async function livenessLoop(id) {
  const video = $("liveness-video"), canvas = document.createElement("canvas");
  while (check.id === id) {
    const started = performance.now();
    let failure = null;
    try {
      const form = new FormData();
      form.append("image", await grabFrame(video, canvas), "frame.jpg");
      form.append("seq", String(check.seq++));
      const doc = await apiJSON(`/v1/liveness/sessions/${id}/frames`, { method: "POST", body: form });
      if (check.id !== id) return;
      showProgress(doc.progress);
      if (doc.state !== "pending") { finishLiveness(id); return; }
    } catch (err) {
      failure = err;
      if (check.id !== id) return;
      if (err instanceof ApiError && ["session_expired", "session_closed"].includes(err.code)) { finishLiveness(id); return; }
      sayError(err);
      if (endsRun(err)) { stopLiveness(false); return; }
    }
    await pace(started, failure);
  }
}

const REASONS = { expired: "the time ran out" };

/** The session's verdict as the service holds it (never the page's own guess). */
async function finishLiveness(id) {
  stopLiveness(false);
  try {
    const doc = await apiJSON(`/v1/liveness/sessions/${id}`);
    const passed = doc.state === "passed";
    const verdict = $("liveness-verdict");
    verdict.textContent = passed ? "PASSED" : "FAILED";
    verdict.className = "verdict " + (passed ? "passed" : "failed");
    verdict.dataset.state = doc.state;
    const reason = doc.claims && doc.claims.reason;
    $("liveness-detail").textContent = passed
      ? `Every step was answered (${doc.frames} frames checked); the result is signed.`
      : `Not passed: ${REASONS[reason] || (reason || doc.state).replaceAll("_", " ")} (${doc.frames} frames checked).`;
    $("liveness-prompt").textContent = "";
    if (Array.isArray(doc.challenge.steps)) {  // the whole challenge, now that it is over
      check.prompts = doc.challenge.steps.map((st) => st.prompt);
      check.total = check.prompts.length;
      const done = doc.result ? doc.result.steps.filter((st) => st.done).length : 0;
      drawSteps(done);
    }
    livenessState("Done.");
  } catch (err) {
    sayError(err);
  }
}

function stopLiveness(tell = true) {
  check.id = null;
  clearInterval(check.timer);
  closeCamera($("liveness-video"), check.stream);
  check.stream = null;
  $("liveness-stage").hidden = true;
  $("liveness-start").disabled = false;
  $("liveness-stop").disabled = true;
  if (tell) {
    $("liveness-prompt").textContent = "";
    livenessState("Cancelled.");
  }
}

$("liveness-start").addEventListener("click", startLiveness);
$("liveness-stop").addEventListener("click", () => stopLiveness());

// --- start ---------------------------------------------------------------------------------------
// A key kept in this tab from before a reload is checked again, like a newly entered one.
if (getKey()) {
  useKey(getKey()).then((ok) => { if (ok) loadPeople(); });
} else {
  showKeyState("none");
}
