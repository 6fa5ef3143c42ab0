#!/usr/bin/env node
/*
 * whisk's Node.js action runtime: OpenWhisk's action container protocol (docs/openwhisk.md §4) with only node's
 * standard library.
 *
 * It runs as a container's entry point and as a child process of the `process://` backend.
 * WHISK_PROXY_SOCKET=/path serves HTTP on a unix socket, else TCP on WHISK_PROXY_HOST (0.0.0.0) :
 * WHISK_PROXY_PORT (8080). __OW_ALLOW_CONCURRENT=true lets several /run overlap (docs/openwhisk.md §7.6).
 * WHISK_API_RELAY_SOCKET, in a container without a network, names a socket that leads to the API host; it is served
 * on 127.0.0.1:WHISK_API_RELAY_PORT (startApiRelay).
 *
 *   POST /init  {"value": {name, main, code, binary, env}}  source text, or a base64 zip or tar.gz (package.json
 *               main or index.js)
 *   POST /run   {value, namespace, action_name, ..., deadline}  -> main(value), a value or a Promise, as JSON
 *
 * Statuses and messages follow openwhisk-runtime-nodejs (src/service.js, runner.js): a throw is a developer error
 * (502 "An error has occurred: ..."), a rejected Promise an application error (200 {"error": ...}).
 */
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const vm = require('vm');
const zlib = require('zlib');
const Module = require('module');

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';

// process.env is backed by setenv(3), and glibc keeps every distinct value it was ever given: a fresh activation id,
// transaction id and deadline on every /run would leak about 300 bytes an activation (measured: 29 MB per 100,000
// runs). A plain object holds the variables instead, so old values are garbage-collected; child processes still get
// them, as child_process passes process.env explicitly. Other names still reach the real environment too, so that
// node's own reactions (process.env.TZ = ...) work. Values become strings, as with the real process.env.
const realEnv = process.env;
const activationEnv = Object.assign({}, realEnv);
process.env = new Proxy(activationEnv, {
    set(target, key, value) {
        target[key] = String(value);
        if (typeof key === 'string' && !key.startsWith('__OW_')) realEnv[key] = target[key];
        return true;
    },
    deleteProperty(target, key) {
        delete target[key];
        if (typeof key === 'string' && !key.startsWith('__OW_')) delete realEnv[key];
        return true;
    },
});
const ALLOW_CONCURRENT = String(process.env.__OW_ALLOW_CONCURRENT || '').toLowerCase() === 'true';
// A source action's main may name a nested property ("handlers.main"), nothing else: it becomes code. A zip's main is
// "module.property.path" or "property", the module any path without a dot ("lib/app.other"), as OpenWhisk splits it.
const MAIN_NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
const ZIP_MAIN = /^[^.]+(\..+)?$/;

let status = 'ready';           // ready | starting | running | stopped, as the Node.js runtime tracks it
let handler;                    // the user's entry point once /init succeeded
const folders = [];

function setStatus(next) {
    if (status !== 'stopped') status = next;
}

// The streams' own writes, taken before any action ran: an action that silences its output by replacing
// process.stdout.write (or console) still gets its logs collected, as in OpenWhisk's Python runtime, whose sentinels
// another process writes.
const writeStdout = process.stdout.write.bind(process.stdout);
const writeStderr = process.stderr.write.bind(process.stderr);

function endActivation() {
    // console writes to pipes and files are synchronous on Linux, so the user's output is already out
    writeStdout(SENTINEL + '\n');
    writeStderr(SENTINEL + '\n');
}

// A message's key names its variable: "activation_id" -> __OW_ACTIVATION_ID. The same few keys come every /run.
const activationNames = new Map();

function activationName(key) {
    let name = activationNames.get(key);
    if (name === undefined) {
        name = '__OW_' + key.toUpperCase();
        if (activationNames.size < 64) activationNames.set(key, name);
    }
    return name;
}

function envText(value) {
    if (typeof value === 'string') return value;
    if (value === null || value === undefined) return '';
    return JSON.stringify(value);
}

// An /init parameter as OpenWhisk's runtime exports it: objects as JSON, other values by toString, and every false
// value (false, 0, null, "") as "".
function initEnvText(value) {
    if (value !== null && typeof value === 'object') return JSON.stringify(value);
    return value ? value.toString() : '';
}

// --- loading the code -------------------------------------------------------------------------------------

function splitMain(main) {
    // "main" -> [undefined, "main"]; "index.handler" -> ["index", "handler"] (module in the zip, then property)
    const dot = main.indexOf('.');
    return dot < 0 ? [undefined, main] : [main.slice(0, dot), main.slice(dot + 1)];
}

function property(object, dotted) {
    return dotted.split('.').reduce((o, key) => (o === undefined || o === null ? undefined : o[key]), object);
}

function assertFunction(candidate, main) {
    if (typeof candidate !== 'function') throw `Action entrypoint '${main}' is not a function.`;
    return candidate;
}

// The folder an action's code goes in: `code` in a folder of its own, whose node_modules is the environment's (the
// first NODE_PATH entry). ES modules, and import() from any module, resolve bare names through the node_modules
// folders above the importing file and never through NODE_PATH: OpenWhisk's image has its modules in /node_modules,
// above every action, so that `import openwhisk from 'openwhisk'` finds them. require() finds them there as well,
// after the action's own node_modules, as before.
function actionFolder() {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'action-'));
    folders.push(parent);
    const bundled = (process.env.NODE_PATH || '').split(path.delimiter).find(Boolean);
    if (bundled) fs.symlinkSync(path.resolve(bundled), path.join(parent, 'node_modules'), 'dir');
    const folder = path.join(parent, 'code');
    fs.mkdirSync(folder);
    return folder;
}

// import() in source code: node's own loader, as for any module, resolving from the action's file (without the
// option the vm refuses it: ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING; OpenWhisk's runner evals the code, where it works).
const IMPORT_OPTION = vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
    ? { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER } : {};

function loadSource(code, main, folder) {
    const file = path.join(folder, 'index.js');
    fs.writeFileSync(file, code);
    process.chdir(folder);
    // CommonJS semantics (require, module.exports, exports) plus a tail that returns a plain `function main`
    // declared at top level, which a module would otherwise keep private.
    const tail = `\n;return (function () { try { return (${main}); } catch (e) {
        if (e instanceof ReferenceError) return undefined; throw e; } })();`;
    let wrapper;
    try {
        wrapper = vm.compileFunction(code + tail, ['exports', 'require', 'module', '__filename', '__dirname'],
            { filename: file, ...IMPORT_OPTION });
    } catch (error) {
        // node puts the offending line before a compile error's stack, the tail above when the code ends early;
        // OpenWhisk's runner evals the code and reports the error itself first ("SyntaxError: ...").
        const at = error && typeof error.stack === 'string' ? error.stack.indexOf(`\n\n${error.name}: `) : -1;
        if (at >= 0) error.stack = error.stack.slice(at + 2);
        throw error;
    }
    const mod = new Module(file, null);
    mod.filename = file;
    mod.paths = Module._nodeModulePaths(folder);
    const found = wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, folder);
    mod.loaded = true;
    const entry = typeof found === 'function' ? found : property(mod.exports, main);
    return assertFunction(entry, main);
}

// The handler of a zip action, or a Promise of the handler of a tar.gz one, told apart by their first bytes as
// OpenWhisk's runner does (detectFileType: a gzip with no flags or only a file name is a tar.gz).
function loadArchive(code, main, folder) {
    const archive = Buffer.from(code, 'base64');
    const magic = archive.length < 4 ? 0 : archive.readUInt32BE(0);
    if (magic === 0x504b0304) {
        unzip(archive, folder);
        return entryPoint(main, folder);
    }
    if (magic === 0x1f8b0800 || magic === 0x1f8b0808) return untar(archive, folder).then(() => entryPoint(main, folder));
    throw 'There was an error uncompressing the action archive. The file type is unsupported';
}

function entryPoint(main, folder) {
    const [index, name] = splitMain(main);
    process.chdir(folder);
    if (index === undefined && !fs.existsSync(path.join(folder, 'package.json'))
        && !fs.existsSync(path.join(folder, 'index.js'))) {
        throw 'Zipped actions must contain either package.json or index.js at the root.';
    }
    // require() of the folder follows package.json "main", else index.js
    const exported = Module.createRequire(path.join(folder, 'noop.js'))(index === undefined ? folder
        : path.join(folder, index));
    return assertFunction(property(exported, name), main);
}

// The platform's cap on what the code may unpack to (WHISK_LIMIT_MAX_CODE_UNPACKED_MB); 256 MB when unset.
function unpackCap() {
    return Number(process.env.WHISK_MAX_CODE_UNPACKED_BYTES) || 256 * 1024 * 1024;
}

function unzip(archive, folder) {
    // The central directory at the end names every entry; each entry's data follows its local header.
    const broken = 'There was an error uncompressing the action Zip archive.';
    let end = -1;
    for (let i = archive.length - 22; i >= Math.max(0, archive.length - 22 - 0xffff); i--) {
        if (archive.readUInt32LE(i) === 0x06054b50) { end = i; break; }
    }
    if (end < 0) throw broken;
    let count = archive.readUInt16LE(end + 10);
    let at = archive.readUInt32LE(end + 16);
    if (count === 0xffff || at === 0xffffffff) {
        // ZIP64 (`zip -fz`, or past 65,535 entries or 4 GiB): the real count and offset are in the ZIP64 end record,
        // which its locator, just before the end record, points to; OpenWhisk's unzip reads them.
        const locator = end - 20;
        if (locator < 0 || archive.readUInt32LE(locator) !== 0x07064b50) throw broken;
        const record = wide(archive, locator + 8);
        if (record + 56 > archive.length || archive.readUInt32LE(record) !== 0x06064b50) throw broken;
        count = wide(archive, record + 32);
        at = wide(archive, record + 48);
    }
    const root = path.resolve(folder);
    // The cap on what the code may unpack to (unpackCap). The declared sizes are summed first (nothing is written over the cap), and every entry is inflated with at
    // most what is left, since an entry may lie about its size; a failure leaves nothing behind.
    const cap = unpackCap();
    const tooBig = bytes => `${broken} It unpacks to ${bytes} bytes or more, more than the limit of ${cap} bytes.`;
    let declared = 0;
    let written = 0;
    try {
        for (let n = 0, c = at; n < count && c + 46 <= archive.length; n++) {
            const entry = centralEntry(archive, c, broken);
            declared += entry.size;
            c = entry.next;
        }
        if (declared > cap) throw tooBig(declared);
        for (let n = 0; n < count; n++) written += unzipEntry();
    } catch (error) {
        fs.rmSync(root, { recursive: true, force: true });
        throw error;
    }

    function unzipEntry() {
        if (at + 46 > archive.length || archive.readUInt32LE(at) !== 0x02014b50) throw broken;
        const { method, packed: size, mode, local, name, next } = centralEntry(archive, at, broken);
        at = next;
        const target = path.resolve(root, name);
        if (!target.startsWith(root + path.sep)) throw `${broken} The entry '${name}' points outside the archive.`;
        if (name.endsWith('/')) {
            fs.mkdirSync(target, { recursive: true });
            return 0;
        }
        if (local + 30 > archive.length || archive.readUInt32LE(local) !== 0x04034b50) throw broken;
        const start = local + 30 + archive.readUInt16LE(local + 26) + archive.readUInt16LE(local + 28);
        const raw = archive.subarray(start, start + size);
        const left = cap - written;
        let data;
        if (method === 0) data = raw;
        else if (method === 8) {
            try {
                data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, left) });
            } catch (error) {
                if (error && error.code === 'ERR_BUFFER_TOO_LARGE') throw tooBig(cap + 1);
                throw error;
            }
        } else throw `${broken} The entry '${name}' uses the unsupported compression method ${method}.`;
        if (data.length > left) throw tooBig(written + data.length);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, data, { mode: mode || 0o644 });
        return data.length;
    }
}

// An 8-byte little-endian number of a ZIP64 field, as long as it is exact in a double.
function wide(archive, at) {
    const value = Number(archive.readBigUInt64LE(at));
    if (!Number.isSafeInteger(value)) throw 'There was an error uncompressing the action Zip archive.';
    return value;
}

// The central directory's entry at `at`: its method, sizes (unpacked `size`, `packed`), mode, local header offset,
// name and where the next entry starts. A size or offset of 0xffffffff is in the entry's ZIP64 extra field (id 1),
// which holds, in this order, those of them that are.
function centralEntry(archive, at, broken) {
    if (at + 46 > archive.length) throw broken;
    const nameLength = archive.readUInt16LE(at + 28);
    const extraLength = archive.readUInt16LE(at + 30);
    const entry = {
        method: archive.readUInt16LE(at + 10),
        packed: archive.readUInt32LE(at + 20),
        size: archive.readUInt32LE(at + 24),
        mode: (archive.readUInt32LE(at + 38) >>> 16) & 0o777,
        local: archive.readUInt32LE(at + 42),
        name: archive.toString('utf8', at + 46, at + 46 + nameLength),
        next: at + 46 + nameLength + extraLength + archive.readUInt16LE(at + 32),
    };
    const wanted = ['size', 'packed', 'local'].filter(field => entry[field] === 0xffffffff);
    if (wanted.length) {
        const extraEnd = Math.min(at + 46 + nameLength + extraLength, archive.length);
        let field = at + 46 + nameLength;
        while (field + 4 <= extraEnd && archive.readUInt16LE(field) !== 1) field += 4 + archive.readUInt16LE(field + 2);
        if (field + 4 + 8 * wanted.length > extraEnd) throw broken;
        wanted.forEach((name, n) => { entry[name] = wide(archive, field + 4 + 8 * n); });
    }
    return entry;
}

// A tar.gz archive into `folder`, as a stream (each file written as it comes, the archive never whole in memory):
// its folders and regular files, with GNU and pax long names; links and devices are left out, as OpenWhisk's Go
// proxy leaves them (its Node.js runtime runs tar). Entries outside the folder and the cap as for a zip; a failure
// leaves nothing behind.
function untar(archive, folder) {
    const broken = 'There was an error uncompressing the action Tar GZ archive.';
    const root = path.resolve(folder);
    const cap = unpackCap();
    let written = 0;
    let pending = Buffer.alloc(0);
    let entry = null;               // the entry whose data comes next: {left, pad, fd?, kind?, parts?}
    let longName;                   // a GNU ('L') or pax ('x') name for the next entry
    let ended = false;

    const text = (block, at, length) => {
        const end = block.indexOf(0, at);
        return block.toString('utf8', at, end < 0 || end > at + length ? at + length : end);
    };
    const number = (block, at, length) => {
        if (block[at] & 0x80) {                  // base-256, for sizes past 8 GiB
            let value = block[at] & 0x7f;
            for (let i = at + 1; i < at + length; i++) value = value * 256 + block[i];
            if (!Number.isSafeInteger(value)) throw broken;
            return value;
        }
        const digits = block.toString('latin1', at, at + length).replace(/\0.*$/s, '').trim();
        if (!/^[0-7]*$/.test(digits)) throw broken;
        return digits ? parseInt(digits, 8) : 0;
    };
    const target = name => {
        const resolved = path.resolve(root, name.replace(/^\/+/, ''));     // "/x" is "x", as tar has it
        if (resolved === root) return undefined;                            // "./"
        if (!resolved.startsWith(root + path.sep)) throw `${broken} The entry '${name}' points outside the archive.`;
        return resolved;
    };

    function header(block) {
        let sum = 0;
        for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
        if (number(block, 148, 8) !== sum) throw broken;
        const size = number(block, 124, 12);
        const type = block[156] === 0 ? '0' : String.fromCharCode(block[156]);
        const pad = (512 - (size % 512)) % 512;
        if (type === 'L' || type === 'x') {
            if (size > 1024 * 1024) throw broken;
            return { left: size, pad, kind: type, parts: [] };
        }
        let name = text(block, 0, 100);
        // POSIX ustar ("ustar\0") has a prefix for long names; GNU's ("ustar  ") keeps other fields there
        if (block.toString('latin1', 257, 263) === 'ustar\0' && block[345]) name = `${text(block, 345, 155)}/${name}`;
        if (longName !== undefined) [name, longName] = [longName, undefined];
        if (type === 'g' || type === 'K') return { left: size, pad };
        const where = target(name);
        if (type === '5') {
            if (where) fs.mkdirSync(where, { recursive: true });
        } else if ((type === '0' || type === '7') && where) {
            written += size;
            if (written > cap) throw `${broken} It unpacks to ${written} bytes or more, more than the limit of ${cap} bytes.`;
            fs.mkdirSync(path.dirname(where), { recursive: true });
            return { left: size, pad, fd: fs.openSync(where, 'w', (number(block, 100, 8) & 0o777) || 0o644) };
        }
        return { left: size, pad };                 // a link, a device, a fifo: its data, if any, is skipped
    }

    function finish() {
        if (entry.fd !== undefined) fs.closeSync(entry.fd);
        if (entry.kind === 'L') longName = text(Buffer.concat(entry.parts), 0, Infinity);
        if (entry.kind === 'x') {                   // records "<length> <key>=<value>\n"; the name is "path"
            const found = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.concat(entry.parts).toString('utf8'));
            if (found) longName = found[1];
        }
        entry = null;
    }

    function feed(chunk) {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        while (!ended) {
            if (entry === null) {
                if (pending.length < 512) return;
                const block = pending.subarray(0, 512);
                pending = pending.subarray(512);
                if (block.every(byte => byte === 0)) ended = true;         // the end of the archive
                else entry = header(block);
                continue;
            }
            if (entry.left > 0) {
                const data = pending.subarray(0, Math.min(entry.left, pending.length));
                if (!data.length) return;
                pending = pending.subarray(data.length);
                entry.left -= data.length;
                if (entry.fd !== undefined) {
                    for (let at = 0; at < data.length;) at += fs.writeSync(entry.fd, data, at);
                } else if (entry.parts) entry.parts.push(Buffer.from(data));
                continue;
            }
            const skip = Math.min(entry.pad, pending.length);
            pending = pending.subarray(skip);
            entry.pad -= skip;
            if (entry.pad > 0) return;
            finish();
        }
    }

    return new Promise((resolve, reject) => {
        const gunzip = zlib.createGunzip();
        let failed = false;
        const fail = error => {
            if (failed) return;
            failed = true;
            gunzip.destroy();
            if (entry && entry.fd !== undefined) fs.closeSync(entry.fd);
            fs.rmSync(root, { recursive: true, force: true });
            reject(typeof error === 'string' ? error : broken);
        };
        gunzip.on('data', chunk => {
            try {
                feed(chunk);
            } catch (error) {
                fail(error);
            }
        });
        gunzip.on('error', () => fail(broken));
        gunzip.on('end', () => {
            if (failed) return;
            if (entry !== null && entry.left > 0) return fail(broken);      // cut short
            if (entry !== null) finish();
            resolve();
        });
        gunzip.end(archive);
    });
}

// --- /init and /run ---------------------------------------------------------------------------------------

function initialize(message) {
    if (handler !== undefined) return [403, { error: 'Cannot initialize the action more than once.' }];
    if (status !== 'ready') return [403, { error: `System not ready, status is ${status}.` }];
    const value = (message && typeof message.value === 'object' && message.value) || {};
    const code = value.code;
    const main = value.main || 'main';
    if (typeof code !== 'string' || !code || typeof main !== 'string') {
        return [403, { error: 'Missing main/no code to execute.' }];
    }
    setStatus('starting');
    if (value.env && typeof value.env === 'object') {
        for (const [key, item] of Object.entries(value.env)) process.env[key] = initEnvText(item);
    }
    try {
        if (!(value.binary ? ZIP_MAIN : MAIN_NAME).test(main)) throw 'Name of main function is not valid.';
        const folder = actionFolder();
        const loaded = value.binary ? loadArchive(code, main, folder) : loadSource(code, main, folder);
        return loaded instanceof Promise ? loaded.then(initialized, initFailed) : initialized(loaded);
    } catch (error) {
        return initFailed(error);
    }
}

function initialized(entry) {
    handler = entry;
    setStatus('ready');
    return [200, { OK: true }];
}

function initFailed(error) {
    console.error('Error during initialization:', error);
    endActivation();
    setStatus('stopped');
    cleanup();              // no /init follows: what it unpacked or linked goes now, not when the proxy ends
    return [502, { error: `Initialization has failed due to: ${error && error.stack ? error.stack : error}` }];
}

// A rejection's reason as OpenWhisk's runtime records it (with the serialize-error package, version 9): an object is
// copied without its functions, a reference back to an enclosing object as "[Circular]", a Buffer or a stream by its
// kind, through toJSON when it has one; an error's name, message, stack, code and cause are kept though not
// enumerable; a function is named; anything else is itself. If that fails, the failure's message.
const ERROR_FIELDS = ['name', 'message', 'stack', 'code', 'cause'];

function rejectionValue(reason) {
    if (!reason) return {};
    try {
        if (typeof reason === 'function') return `[Function: ${reason.name ?? 'anonymous'}]`;
        return typeof reason === 'object' ? plainCopy(reason, []) : reason;
    } catch (error) {
        return error && error.message;
    }
}

function isErrorLike(value) {
    return Boolean(value) && typeof value === 'object' && 'name' in value && 'message' in value && 'stack' in value;
}

const inToJSON = new Set();

function plainCopy(from, ancestors) {
    if (typeof from.toJSON === 'function' && !inToJSON.has(from)) {
        inToJSON.add(from);
        try {
            return from.toJSON();
        } finally {
            inToJSON.delete(from);
        }
    }
    const copy = Array.isArray(from) ? [] : {};
    const path = ancestors.concat([from]);
    for (const [key, item] of Object.entries(from)) {
        if (Buffer.isBuffer(item)) copy[key] = '[object Buffer]';
        else if (item !== null && typeof item === 'object' && typeof item.pipe === 'function') copy[key] = '[object Stream]';
        else if (typeof item === 'function') continue;
        else if (!item || typeof item !== 'object') copy[key] = item;
        else copy[key] = path.includes(item) ? '[Circular]' : plainCopy(item, path);
    }
    for (const field of ERROR_FIELDS) {
        const item = from[field];
        if (item !== undefined && item !== null) copy[field] = isErrorLike(item) ? plainCopy(item, path) : item;
    }
    return copy;
}

// Answers a /run: [status, JSON text or value] at once when main returns a value, a Promise of it when main returns a
// Promise, so that a synchronous action costs no trip through the microtask queue.
function run(message) {
    if (handler === undefined || status !== 'ready') {
        endActivation();
        return [403, { error: handler === undefined ? 'System not initialized.' : `System not ready, status is ${status}.` }];
    }
    const msg = (message && typeof message === 'object') ? message : {};
    let value = msg.value;
    if (value === null || value === undefined) value = {};
    else if (typeof value !== 'object') {
        endActivation();
        return [403, { error: `Internal system error: the argument must be a dictionary but has type '${typeof value}'.` }];
    }
    if (!ALLOW_CONCURRENT) setStatus('running');
    for (const key in msg) {
        if (key !== 'value') activationEnv[activationName(key)] = envText(msg[key]);
    }
    let result;
    try {
        result = handler(value);
    } catch (error) {
        console.error(error);
        endActivation();
        setStatus('stopped');
        return [502, { error: `An error has occurred: ${error}` }];
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        // a rejection is an application error
        return Promise.resolve(result).then(settle, error => settle({ error: rejectionValue(error) }));
    }
    return settle(result);
}

function settle(result) {
    if (result === undefined) result = {};
    let body;
    let unwritable = false;
    if (typeof result !== 'object') {
        console.error(`Result must be of type object but has type "${typeof result}":`, result);
    } else {            // null too, as OpenWhisk's runtime answers it: the platform then refuses the answer
        try {
            body = JSON.stringify(result);
        } catch (error) {
            // OpenWhisk's runtime fails writing it (express's res.json) after the activation ended, and its endpoint
            // answers 500 "Internal error."; the reason is logged here, where the activation's logs still take it.
            console.error('The result is not JSON:', error);
            unwritable = true;
        }
    }
    endActivation();
    if (!ALLOW_CONCURRENT) setStatus('ready');
    if (unwritable) return [500, { error: 'Internal error.' }];
    return body === undefined ? [502, { error: 'The action did not return a dictionary.' }] : [200, body];
}

// --- HTTP/1.1 ----------------------------------------------------------------------------------------------
//
// A small HTTP/1.1 server over `net`, as the Python proxy has: one request at a time per connection (keep-alive,
// Content-Length or chunked bodies, Expect: 100-continue), one write per answer. node's `http` module runs several
// times more JavaScript per request, which a container's V8 has not compiled yet for most of its life: under load
// the proxy took 0.24-0.39 ms of CPU a /run with it.

const REASONS = {
    100: 'Continue', 200: 'OK', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
    431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway',
};
const MAX_HEAD_BYTES = 64 * 1024;

class BadRequest extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

// The answer to a request the proxy itself failed on (a bug of its own, not the action's)
function internalError(error) {
    return [500, { error: `Internal error of the proxy: ${error}` }];
}

function answer(socket, code, payload, keepAlive) {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    socket.write(`HTTP/1.1 ${code} ${REASONS[code] || 'Unknown'}\r\nContent-Type: application/json\r\n`
        + `Content-Length: ${Buffer.byteLength(body)}\r\n${keepAlive ? '' : 'Connection: close\r\n'}\r\n${body}`);
    if (!keepAlive) socket.end();
}

// [status, payload], or a Promise of it (an asynchronous action's /run)
function handle(method, target, body) {
    const query = target.indexOf('?');
    const url = query < 0 ? target : target.slice(0, query);
    if (url !== '/init' && url !== '/run') return [404, { error: 'The requested resource does not exist.' }];
    if (method !== 'POST') return [405, { error: `Method ${method} is not allowed on ${url}.` }];
    let message;
    try {
        message = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch (error) {
        if (url === '/run') endActivation();
        return [400, { error: `Error unmarshaling request: ${error.message}` }];
    }
    return url === '/init' ? initialize(message) : run(message);
}

// Reads requests off one connection: the head, then the body by Content-Length or by chunks. `take` hands each whole
// request on; no byte of the next is read before the answer to this one is written.
class Connection {
    constructor(socket) {
        this.socket = socket;
        this.buffer = Buffer.alloc(0);
        this.busy = false;
        this.request = null;        // {method, target, keepAlive, chunked, need, parts, got}, once its head is read
        this.ended = false;         // the client has half-closed: answer what is running, then close
        socket.on('data', chunk => {
            this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
            this.pump();
        });
        socket.on('end', () => {
            this.ended = true;
            if (!this.busy) socket.end();
        });
        socket.on('error', () => socket.destroy());
    }

    pump() {
        while (!this.busy && !this.socket.destroyed) {
            let whole;
            try {
                whole = this.request === null ? this.readHead() : this.readBody();
            } catch (error) {
                if (!(error instanceof BadRequest)) throw error;
                answer(this.socket, error.status, { error: error.message }, false);
                this.buffer = Buffer.alloc(0);
                this.busy = true;                   // closed: nothing more is read
                return;
            }
            if (whole === undefined) return;           // more bytes needed
            if (whole === null) continue;              // a head was read: on to its body
            this.take(whole);
        }
    }

    readHead() {
        const end = this.buffer.indexOf('\r\n\r\n');
        if (end < 0) {
            if (this.buffer.length > MAX_HEAD_BYTES) throw new BadRequest(431, 'Request headers too large.');
            return undefined;
        }
        const lines = this.buffer.toString('latin1', 0, end).replace(/^(\r\n)+/, '').split('\r\n');
        this.buffer = this.buffer.subarray(end + 4);
        const first = lines[0].split(' ');
        if (first.length < 3) throw new BadRequest(400, 'Bad request line.');
        const headers = {};
        for (let i = 1; i < lines.length; i++) {
            const colon = lines[i].indexOf(':');
            if (colon > 0) headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
        }
        const version = first.slice(2).join(' ');
        const connection = (headers.connection || '').toLowerCase();
        const keepAlive = version === 'HTTP/1.1' ? !connection.includes('close') : connection.includes('keep-alive');
        if ((headers.expect || '').toLowerCase() === '100-continue') this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        const chunked = (headers['transfer-encoding'] || '').toLowerCase().includes('chunked');
        let need = 0;
        if (!chunked && headers['content-length'] !== undefined) {
            need = Number(headers['content-length']);
            if (!/^\d+$/.test(headers['content-length']) || !Number.isSafeInteger(need)) {
                throw new BadRequest(400, 'Bad Content-Length.');
            }
        }
        this.request = { method: first[0], target: first[1], keepAlive, chunked, need, parts: [], got: 0, crlf: false, trailers: false };
        return null;
    }

    readBody() {
        const request = this.request;
        if (!request.chunked) {
            const take = Math.min(request.need - request.got, this.buffer.length);
            if (take > 0) {
                request.parts.push(this.buffer.subarray(0, take));
                request.got += take;
                this.buffer = this.buffer.subarray(take);
            }
            return request.got < request.need ? undefined : this.finish();
        }
        for (;;) {                                      // chunked: size line, data, CRLF ... 0, trailers, CRLF
            if (request.trailers) {
                const end = this.buffer.indexOf('\r\n');
                if (end < 0) return undefined;
                this.buffer = this.buffer.subarray(end + 2);
                if (end === 0) return this.finish();
                continue;
            }
            if (request.need > 0) {                     // a chunk's data, as it arrives
                const take = Math.min(request.need, this.buffer.length);
                if (take === 0) return undefined;
                request.parts.push(this.buffer.subarray(0, take));
                this.buffer = this.buffer.subarray(take);
                request.need -= take;
                if (request.need === 0) request.crlf = true;
                continue;
            }
            if (request.crlf) {                         // the CRLF after a chunk's data
                if (this.buffer.length < 2) return undefined;
                this.buffer = this.buffer.subarray(2);
                request.crlf = false;
                continue;
            }
            const end = this.buffer.indexOf('\r\n');
            if (end < 0) return undefined;
            const text = this.buffer.toString('latin1', 0, end).split(';')[0].trim();
            this.buffer = this.buffer.subarray(end + 2);
            const size = /^[0-9a-fA-F]+$/.test(text) ? parseInt(text, 16) : NaN;
            if (Number.isNaN(size)) throw new BadRequest(400, 'Bad chunk size.');
            if (size === 0) request.trailers = true;
            else request.need = size;
        }
    }

    finish() {
        const request = this.request;
        this.request = null;
        request.body = request.parts.length === 1 ? request.parts[0] : Buffer.concat(request.parts);
        return request;
    }

    take(request) {
        this.busy = true;
        let outcome;
        try {
            outcome = handle(request.method, request.target, request.body);
        } catch (error) {
            outcome = internalError(error);
        }
        if (Array.isArray(outcome)) this.reply(request, outcome);     // inside pump(), whose loop goes on
        else {
            outcome.catch(internalError)
                .then(settled => {
                    if (this.reply(request, settled)) this.pump();
                });
        }
    }

    // Writes the answer; true when the connection stays open for the next request.
    reply(request, [code, payload]) {
        if (this.socket.destroyed) return false;
        const keepAlive = request.keepAlive && !this.ended;
        answer(this.socket, code, payload, keepAlive);
        if (keepAlive) this.busy = false;       // else closed after this answer: busy stays set, nothing more is read
        return keepAlive;
    }
}

function cleanup() {
    for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
}

// --- the API host in a container without a network --------------------------------------------------------

// Each connection to 127.0.0.1:WHISK_API_RELAY_PORT is piped to WHISK_API_RELAY_SOCKET, which the invoker relays to
// the API host, so that __OW_API_HOST can be http://127.0.0.1:<port>. `then` runs once it listens, so it is bound
// before the proxy listens, hence before any action code. It shares the action's event loop: an action that blocks
// the loop (execSync) cannot reach the API host while it blocks.
function startApiRelay(then) {
    const target = process.env.WHISK_API_RELAY_SOCKET;
    if (!target) return then();
    const relay = net.createServer({ allowHalfOpen: true }, client => {
        const upstream = net.connect({ path: target, allowHalfOpen: true });
        const cut = () => { client.destroy(); upstream.destroy(); };
        client.on('error', cut);
        upstream.on('error', cut);
        client.pipe(upstream);          // an end on one side is passed on as a half-close, after what is buffered
        upstream.pipe(client);
    });
    const failed = error => {                    // cannot listen: the container fails to start, visibly
        // Served already in this network namespace, before any action code: by the relay container beside an image
        // built FROM ours, which runs as a blackbox image does (docs/operations.md, "Threat model").
        if (error.code === 'EADDRINUSE') return then();
        console.error('Cannot serve the API host relay:', error);
        process.exit(1);
    };
    relay.once('error', failed);
    relay.listen({ host: '127.0.0.1', port: Number(process.env.WHISK_API_RELAY_PORT || 3233), backlog: 64 }, () => {
        relay.off('error', failed);
        relay.on('error', error => console.error('API host relay:', error));   // later (EMFILE): the action's own
        then();
    });
}

function serve() {
    // The invoker holds one connection per container for as long as it likes; actions may run up to 5 minutes: no
    // timeouts. Nagle off for TCP (a container with a network), as node's http server has it; a client that
    // half-closes after its request still gets the answer.
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, socket => new Connection(socket));
    const socketPath = process.env.WHISK_PROXY_SOCKET;
    process.on('exit', () => {
        cleanup();
        try {
            if (socketPath) fs.rmSync(socketPath, { force: true });
        } catch (error) {
            // the folder is the invoker's once the socket existed (docs/operations.md): nothing to clean up here
        }
    });
    // PID 1 in a container ignores SIGTERM unless it handles it (docs/testing.md, Docker)
    for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
    startApiRelay(() => {
        if (socketPath) {
            fs.rmSync(socketPath, { force: true });        // a stale socket file from an earlier run
            // Connectable by any user (the invoker may run as another than the action) from the moment it exists,
            // by the umask at bind: the invoker takes the folder back as soon as the socket is there, and a chmod
            // afterwards could race that and fail. listen() binds before it returns.
            const mask = process.umask(0o111);
            try {
                server.listen(socketPath);
            } finally {
                process.umask(mask);
            }
        } else {
            server.listen(Number(process.env.WHISK_PROXY_PORT || 8080), process.env.WHISK_PROXY_HOST || '0.0.0.0');
        }
    });
}

serve();
