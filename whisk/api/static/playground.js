// whisk playground: a client of the OpenWhisk REST API v1 at the origin its server names in config.json, and
// nowhere else (the page's Content-Security-Policy allows connect-src to this origin and the API's only). The page
// is served on a port of its own, another origin than the web actions' pages any tenant writes, so none of them can
// read what it keeps.
//
// The key lives in sessionStorage: it survives a reload of the tab but is gone when the tab closes, so a key
// pasted on a shared machine is not left behind on disk for the next person, as localStorage would leave it. The
// editor's draft (name, runtime, code, parameters) is kept there too, for the same lifetime.
"use strict";

(() => {
  const API = "/api/v1";
  const NS = `${API}/namespaces/_`;
  const STORAGE = "whisk.playground.key";
  const DRAFT = "whisk.playground.draft";
  const MINE = "whisk.playground.mine";
  const REFRESH_MS = 3000;
  const FOLLOW_MS = 1500;       // how often a run still going after the blocking wait is asked for its record
  const FOLLOW_FOR_MS = 600000; // and for how long: past the longest action time limit (300 s) and its record's write
  const STATUS_WORDS = ["success", "application error", "action developer error", "whisk internal error"];
  const SAMPLES = {
    python: 'def main(args):\n    name = args.get("name", "world")\n    print(f"greeting {name}")\n'
      + '    return {"greeting": f"Hello, {name}!"}\n',
    nodejs: 'function main(params) {\n  const name = params.name || "world";\n  console.log(`greeting ${name}`);\n'
      + '  return { greeting: `Hello, ${name}!` };\n}\n',
  };

  const $ = (id) => document.getElementById(id);
  let key = "";
  let apiOrigin = location.origin;  // where the API is: config.json says (the API's port, the host this page came from)
  let codeIsSample = true;      // the editor holds an untouched sample: a runtime change swaps it for the new one
  let activationsShown = "";    // what the list shows, so that a refresh with nothing new keeps focus in place
  let refreshing = false;
  let busy = false;             // a Run or Save under way: Run and Save say so (aria-disabled) but stay focusable,
                                // since disabling the focused button would drop the focus to the page's body
  let following = "";           // the activation a Run still waits for after the blocking wait: its record, once
                                // stored, takes the Result panel, unless another run or record took it first
  let saved = "";               // name, kind and code last stored: Run stores the action again only when they change,
                                // since an update makes a new version, whose first run is a cold start
  const mine = new Set();       // names this tab stored or opened with this key: only those are overwritten without
                                // asking (kept in sessionStorage, as the key)
  let replace = "";             // a name that already existed, said so once: the next Run or Save replaces it

  class ProblemError extends Error {}

  // --- talking to the API -------------------------------------------------------------------------------------

  function authorization() {
    if (!key) throw new ProblemError("No key: paste a key (uuid:key) above and press Use key.");
    try {
      return "Basic " + btoa(key);
    } catch (err) {
      throw new ProblemError("The key must be plain ASCII text of the form uuid:key.");
    }
  }

  async function request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (auth) headers.Authorization = authorization();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(apiOrigin + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", cache: "no-store", redirect: "error",
      });
    } catch (err) {
      throw new ProblemError(`Cannot reach the API at ${apiOrigin} (${err.message}). Is whisk running?`);
    }
    const text = await response.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch (err) { /* not JSON: keep the text for the message */ }
    return { status: response.status, data, id: response.headers.get("x-openwhisk-activation-id") };
  }

  function problem(what, answer) {
    const said = answer.data && typeof answer.data === "object" && answer.data.error
      ? answer.data.error : (typeof answer.data === "string" && answer.data.trim()) || "no explanation given";
    const code = answer.data && answer.data.code ? ` (code ${answer.data.code})` : "";
    if (answer.status === 401) {
      return new ProblemError(`${what}: the key was refused (401 Unauthorized): ${said}. Paste a valid key above.`);
    }
    return new ProblemError(`${what}: HTTP ${answer.status}: ${said}${code}`);
  }

  function actionPath(name) {
    return `${NS}/actions/${name.split("/").map(encodeURIComponent).join("/")}`;
  }

  // --- messages -----------------------------------------------------------------------------------------------

  function showError(message) {
    const el = $("status");
    el.textContent = message;
    el.className = "status";
    el.setAttribute("role", "alert");
    el.hidden = false;
  }

  function showNotice(message) {
    const el = $("status");
    el.textContent = message;
    el.className = "status ok";
    el.setAttribute("role", "status");
    el.hidden = false;
  }

  function clearMessage() {
    $("status").hidden = true;
    $("status").textContent = "";
  }

  function failRun(message) {
    // The result panel says it too: never a blank or stale panel after a failed run.
    showError(message);
    $("summary").replaceChildren();
    $("result").textContent = message;
    $("result").classList.add("failed");
    $("logs").textContent = "No logs: the action did not run.";
  }

  // --- the key ------------------------------------------------------------------------------------------------

  function useKey(value) {
    key = value;
    if (value) sessionStorage.setItem(STORAGE, value); else sessionStorage.removeItem(STORAGE);
    $("key-state").textContent = value ? `using key ${value.split(":")[0].slice(0, 8)}…` : "no key";
    if (value) showNamespace(value);
  }

  // Which namespace the key's actions and activations are in (`_` in every path is the key's own).
  async function showNamespace(value) {
    let said;
    try {
      const answer = await request("GET", `${API}/namespaces`);
      said = answer.status === 200 && Array.isArray(answer.data) && answer.data.length
        ? `namespace ${answer.data.join(", ")}` : `refused: HTTP ${answer.status}`;
    } catch (err) {
      said = "namespace unknown: the API is out of reach";
    }
    if (key === value) $("key-state").textContent = `using key ${value.split(":")[0].slice(0, 8)}… (${said})`;
  }

  // The page's settings, from the server that served it: the API's origin, and the guest key on a standalone
  // server. Without them the page tries its own origin and asks for a key.
  async function loadConfig() {
    try {
      const response = await fetch("config.json", { credentials: "omit", cache: "no-store", redirect: "error" });
      return response.ok ? await response.json() : {};
    } catch (err) {
      return {};
    }
  }

  // --- the editor's draft -------------------------------------------------------------------------------------

  function keepDraft() {
    const draft = { name: $("name").value, kind: $("runtime").value, code: $("code").value,
      params: $("params").value, sample: codeIsSample };
    try {
      sessionStorage.setItem(DRAFT, JSON.stringify(draft));
    } catch (err) { /* storage full or refused: the draft lives on in the page only */ }
  }

  function storedDraft() {
    try {
      const draft = JSON.parse(sessionStorage.getItem(DRAFT) || "null");
      return draft && typeof draft === "object" ? draft : null;
    } catch (err) {
      return null;
    }
  }

  function own(name) {
    mine.add(name);
    try {
      sessionStorage.setItem(MINE, JSON.stringify([...mine]));
    } catch (err) { /* kept in the page only */ }
  }

  function ownedBefore() {
    try {
      const names = JSON.parse(sessionStorage.getItem(MINE) || "[]");
      if (Array.isArray(names)) for (const n of names) if (typeof n === "string") mine.add(n);
    } catch (err) { /* none */ }
  }

  // Before the runtimes are known: the name, the parameters and code the person wrote (not a sample).
  function restoreDraft(draft) {
    if (typeof draft.name === "string") $("name").value = draft.name;
    if (typeof draft.params === "string") $("params").value = draft.params;
    if (typeof draft.code === "string" && draft.sample === false) {
      $("code").value = draft.code;
      codeIsSample = false;
    }
  }

  // --- runtimes -----------------------------------------------------------------------------------------------

  function family(kind) {
    return kind.split(":")[0];
  }

  async function loadRuntimes() {
    const answer = await request("GET", "/", undefined, { auth: false });
    if (answer.status !== 200 || !answer.data || typeof answer.data.runtimes !== "object") {
      throw problem("The runtimes could not be loaded", answer);
    }
    const select = $("runtime");
    select.replaceChildren();
    let preferred = null;
    for (const [name, entries] of Object.entries(answer.data.runtimes)) {
      const group = document.createElement("optgroup");
      group.label = name;
      for (const runtime of entries) {
        if (runtime.deprecated) continue;
        const option = new Option(runtime.default ? `${runtime.kind} (default)` : runtime.kind, runtime.kind);
        group.append(option);
        if (runtime.default && (preferred === null || name === "python")) preferred = runtime.kind;
      }
      if (group.children.length) select.append(group);
    }
    if (!select.options.length) throw new ProblemError("This server offers no runtimes.");
    const draft = storedDraft();
    const kept = draft && typeof draft.kind === "string" && [...select.options].some((o) => o.value === draft.kind);
    select.value = kept ? draft.kind : preferred || select.options[0].value;
    if (codeIsSample) $("code").value = sampleFor(select.value);
  }

  function sampleFor(kind) {
    return SAMPLES[family(kind)] || "";
  }

  function ensureKind(kind) {
    const select = $("runtime");
    if (![...select.options].some((o) => o.value === kind)) select.append(new Option(kind, kind));
    select.value = kind;
  }

  // --- running ------------------------------------------------------------------------------------------------

  function readParameters() {
    const text = $("params").value.trim();
    if (!text) return {};
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ProblemError(`The parameters are not valid JSON: ${err.message}`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ProblemError("The parameters must be a JSON object, such as {\"name\": \"whisk\"}.");
    }
    return value;
  }

  function actionName() {
    const name = $("name").value.trim();
    if (!name) throw new ProblemError("The action needs a name.");
    return name;
  }

  async function saveAction(name, { unlessSaved = false } = {}) {
    const kind = $("runtime").value;
    if (!kind) throw new ProblemError("Choose a runtime first.");
    const code = $("code").value;
    const what = JSON.stringify([name, kind, code]);
    if (unlessSaved && what === saved) return null;
    const overwrite = mine.has(name) || replace === name;
    const answer = await request("PUT", `${actionPath(name)}?overwrite=${overwrite}`, { exec: { kind, code } });
    if (answer.status === 409 && !overwrite) {
      replace = name;
      throw new ProblemError(`Action ${name} already exists, and this page neither stored nor opened it: `
        + "Run or Save again to replace it, open it from Actions to edit it, or choose another name.");
    }
    if (answer.status !== 200) throw problem(`Saving action ${name} failed`, answer);
    own(name);
    saved = what;
    return answer.data;
  }

  // A blocking invoke answers with the result before the logs are collected (as OpenWhisk does): they are in the
  // stored record, which may be written a moment after the answer.
  async function loadLogs(id) {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      let answer;
      try {
        answer = await request("GET", `${NS}/activations/${encodeURIComponent(id)}`);
      } catch (err) {
        answer = { status: 0, data: err.message };
      }
      if (answer.status === 200 && answer.data) {
        if (currentId() === id) {
          const logs = answer.data.logs || [];
          $("logs").textContent = logs.length ? logs.join("\n") : "(the activation wrote no logs)";
        }
        return;
      }
      if (answer.status !== 404) {
        if (currentId() === id) $("logs").textContent = answer.status
          ? problem(`The logs of activation ${id} could not be loaded`, answer).message : answer.data;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    if (currentId() === id) $("logs").textContent = `The record of activation ${id} is not stored yet: open it `
      + "from Activations in a moment.";
  }

  function currentId() {
    const cell = $("summary").querySelectorAll("dd")[1];
    return cell ? cell.textContent : "";
  }

  function showRunning(text) {
    $("summary").replaceChildren();
    $("result").textContent = text;
    $("result").classList.remove("failed");
    $("logs").textContent = "No logs yet: the action is running.";
  }

  // A run still going when the blocking wait ended (202), or one whose answer held its result alone (an array):
  // ask for its record until it is stored, then show it.
  async function follow(id, pause = FOLLOW_MS) {
    following = id;
    const until = Date.now() + FOLLOW_FOR_MS;
    while (following === id) {
      if (Date.now() > until) {
        following = "";
        failRun(`The record of activation ${id} is still not stored: open it from Activations when it is.`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      if (following !== id) return;
      let answer;
      try {
        answer = await request("GET", `${NS}/activations/${encodeURIComponent(id)}`);
      } catch (err) {
        continue;                                 // out of reach for a moment: ask again
      }
      if (following !== id) return;
      if (answer.status === 200 && answer.data && answer.data.response) {
        following = "";
        clearMessage();
        showRecord(answer.data);
        refreshActivations();
      } else if (answer.status !== 404) {
        following = "";
        failRun(problem(`Activation ${id} could not be loaded`, answer).message);
      }
    }
  }

  function setBusy(value) {
    busy = value;
    $("run").setAttribute("aria-disabled", value ? "true" : "false");
    $("save").setAttribute("aria-disabled", value ? "true" : "false");
    $("result-panel").setAttribute("aria-busy", value ? "true" : "false");
  }

  async function run() {
    if (busy) return;
    let params;
    let name;
    try {
      params = readParameters();
      name = actionName();
    } catch (err) {
      failRun(err.message);
      return;
    }
    setBusy(true);
    clearMessage();
    following = "";
    showRunning(`Running ${name}…`);
    try {
      const stored = await saveAction(name, { unlessSaved: true });
      let answer = await request("POST", `${actionPath(name)}?blocking=true`, params);
      if (answer.status === 404 && stored === null) {
        // Deleted elsewhere since this page stored it: store it again, once.
        saved = "";
        await saveAction(name);
        answer = await request("POST", `${actionPath(name)}?blocking=true`, params);
      }
      if (answer.status === 202 && answer.data && answer.data.activationId) {
        const id = answer.data.activationId;
        showNotice(`Still running after the blocking wait: activation ${id}. Its result shows here when it ends.`);
        showRunning(`Activation ${id} of ${name} is still running: its result shows here when it ends.`);
        follow(id);
      } else if (Array.isArray(answer.data) && answer.id) {
        // An array result comes bare (as OpenWhisk answers it), the activation id in a header: read the record.
        await follow(answer.id, 300);
      } else if (answer.data && answer.data.activationId && answer.data.response) {
        showRecord(answer.data);
        if (!(answer.data.logs || []).length) {
          $("logs").textContent = "Loading the logs…";
          await loadLogs(answer.data.activationId);
        }
      } else {
        throw problem(`Invoking action ${name} failed`, answer);
      }
      refreshActivations();
      refreshActions();
    } catch (err) {
      failRun(err.message);
    } finally {
      setBusy(false);
    }
  }

  async function save() {
    if (busy) return;
    let name;
    try {
      name = actionName();
    } catch (err) {
      showError(err.message);
      return;
    }
    setBusy(true);
    try {
      const action = await saveAction(name);
      showNotice(`Saved action ${name} (version ${action && action.version}).`);
      refreshActions();
    } catch (err) {
      showError(err.message);
    } finally {
      setBusy(false);
    }
  }

  // --- one activation record ----------------------------------------------------------------------------------

  function annotation(record, name) {
    const found = (record.annotations || []).find((a) => a.key === name);
    return found ? found.value : undefined;
  }

  function showRecord(record) {
    const response = record.response || {};
    const initTime = annotation(record, "initTime");
    const waitTime = annotation(record, "waitTime");
    const status = response.status || STATUS_WORDS[response.statusCode] || "unknown";
    const rows = [
      ["Action", `${record.namespace}/${record.name}`],
      ["Activation id", record.activationId],
      ["Status", status],
      ["Duration", `${record.duration ?? (record.end - record.start)} ms`],
      ["Start", initTime !== undefined ? `cold (init ${initTime} ms)` : "warm"],
    ];
    if (waitTime !== undefined) rows.push(["Wait", `${waitTime} ms`]);
    const summary = $("summary");
    summary.replaceChildren();
    for (const [label, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      if (label === "Status" && !response.success) dd.className = "failed";
      summary.append(dt, dd);
    }
    const result = response.result === undefined ? "(no result)" : JSON.stringify(response.result, null, 2);
    $("result").textContent = result;
    $("result").classList.toggle("failed", !response.success);
    const logs = record.logs || [];
    $("logs").textContent = logs.length ? logs.join("\n") : "(the activation wrote no logs)";
    if (!response.success) {
      const error = response.result && response.result.error;
      const said = typeof error === "string" ? error : JSON.stringify(error ?? response.result ?? null);
      showError(`The action failed (${status}): ${said}`);
    }
  }

  async function openActivation(id) {
    following = "";
    try {
      const answer = await request("GET", `${NS}/activations/${encodeURIComponent(id)}`);
      if (answer.status !== 200) throw problem(`Activation ${id} could not be loaded`, answer);
      clearMessage();
      showRecord(answer.data);
    } catch (err) {
      showError(err.message);
    }
  }

  // --- lists --------------------------------------------------------------------------------------------------

  function item(label, meta, onClick) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    const small = document.createElement("span");
    small.className = "meta";
    small.textContent = meta;
    button.append(small);
    button.addEventListener("click", onClick);
    li.append(button);
    return li;
  }

  function note(text, failed) {
    const li = document.createElement("li");
    li.textContent = text;
    if (failed) li.className = "failed";
    return li;
  }

  async function refreshActivations() {
    if (refreshing || document.hidden) return;
    refreshing = true;
    const list = $("activations");
    let shown;
    let items;
    try {
      const answer = await request("GET", `${NS}/activations?limit=10`);
      if (answer.status !== 200 || !Array.isArray(answer.data)) {
        throw problem("Activations could not be loaded", answer);
      }
      shown = JSON.stringify(answer.data.map((a) => [a.activationId, a.statusCode, a.duration]));
      items = answer.data.length ? answer.data.map((a) => {
        const start = (a.annotations || []).some((n) => n.key === "initTime") ? "cold" : "warm";
        const status = STATUS_WORDS[a.statusCode] || "running";
        const when = a.start ? new Date(a.start).toLocaleTimeString() : "";
        return item(`${a.name} ${a.activationId}`, `${status} · ${a.duration ?? "?"} ms · ${start} · ${when}`,
          () => openActivation(a.activationId));
      }) : [note("No activations yet: run something.")];
    } catch (err) {
      shown = err.message;
      items = [note(err.message, true)];
    } finally {
      refreshing = false;
    }
    if (shown !== activationsShown) {
      activationsShown = shown;
      list.replaceChildren(...items);
    }
  }

  async function refreshActions() {
    const list = $("actions");
    try {
      const answer = await request("GET", `${NS}/actions?limit=50`);
      if (answer.status !== 200 || !Array.isArray(answer.data)) throw problem("Actions could not be loaded", answer);
      list.replaceChildren(...(answer.data.length ? answer.data.map((a) => {
        const pkg = a.namespace.includes("/") ? a.namespace.split("/").slice(1).join("/") + "/" : "";
        const kind = annotation(a, "exec") || "";
        return item(`${pkg}${a.name}`, `${kind} · version ${a.version}`, () => openAction(`${pkg}${a.name}`));
      }) : [note("No actions yet: Run or Save creates one.")]));
    } catch (err) {
      list.replaceChildren(note(err.message, true));
    }
  }

  async function openAction(name) {
    try {
      const answer = await request("GET", actionPath(name));
      if (answer.status !== 200) throw problem(`Action ${name} could not be loaded`, answer);
      const exec = answer.data.exec || {};
      if (typeof exec.code !== "string" || exec.binary) {
        throw new ProblemError(`Action ${name} is a ${exec.kind}${exec.binary ? " (binary)" : ""} action: `
          + "its code cannot be edited here.");
      }
      $("name").value = name;
      ensureKind(exec.kind);
      $("code").value = exec.code;
      codeIsSample = false;
      saved = JSON.stringify([name, exec.kind, exec.code]);
      own(name);
      keepDraft();
      showNotice(`Opened action ${name} (version ${answer.data.version}): edit it, then Save or Run.`);
      $("code").focus();
    } catch (err) {
      showError(err.message);
    }
  }

  // --- wiring -------------------------------------------------------------------------------------------------

  function wire() {
    $("run").addEventListener("click", run);
    $("save").addEventListener("click", save);
    $("refresh-actions").addEventListener("click", refreshActions);
    $("code").addEventListener("input", () => { codeIsSample = false; });
    $("runtime").addEventListener("change", () => {
      if (codeIsSample || !$("code").value.trim()) {
        $("code").value = sampleFor($("runtime").value);
        codeIsSample = true;
      }
    });
    for (const id of ["name", "code", "params", "runtime"]) $(id).addEventListener("input", keepDraft);
    $("runtime").addEventListener("change", keepDraft);
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        run();
      }
    });
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("key").value.trim();
      if (!/^[^:\s]+:\S+$/.test(value)) {
        showError("A key has the form uuid:key (the AUTH of wsk property get --auth).");
        return;
      }
      $("key").value = "";
      useKey(value);
      saved = "";
      mine.clear();                             // another key, maybe another namespace: its names are not ours
      sessionStorage.removeItem(MINE);
      replace = "";
      clearMessage();
      activationsShown = "";
      refreshActions();
      refreshActivations();
    });
  }

  async function start() {
    wire();
    const draft = storedDraft();
    if (draft) restoreDraft(draft);
    ownedBefore();
    const config = await loadConfig();
    if (typeof config.api === "string" && config.api) apiOrigin = config.api;
    useKey(sessionStorage.getItem(STORAGE) || (typeof config.key === "string" ? config.key : ""));
    try {
      await loadRuntimes();
    } catch (err) {
      showError(err.message);
    }
    if (!key) showError("No key: paste a key (uuid:key) above and press Use key.");
    refreshActions();
    refreshActivations();
    setInterval(refreshActivations, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
