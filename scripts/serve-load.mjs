// Load for jclip serve: N clients, each sending requests back to back for a bounded time,
// as many small clients of an embeddings API do. Node 18+ and its standard library only.
//
//   node scripts/serve-load.mjs --url http://127.0.0.1:8080 [--clients 32] [--seconds 10]
//        [--mix mixed|texts|images] [--texts FILE] [--images A.png,B.jpg,...]
//        [--expect FILE.jsonl]
//
// Texts come one per line from --texts (default: a few built in); images are sent as data
// URIs. A text request carries 1 to 3 texts, an image request 1 image. With --expect (lines of
// {"key": "t:TEXT" or "i:PATH", "embedding": [...]}, as the CLI writes them), every vector
// received must equal its expected one exactly. Prints one JSON object: counts, failures,
// rates and latency percentiles. Exits 1 when a request failed or a vector differed.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
    options: {
        url: { type: "string" },
        clients: { type: "string", default: "32" },
        seconds: { type: "string", default: "10" },
        mix: { type: "string", default: "mixed" },
        texts: { type: "string" },
        images: { type: "string", default: "" },
        expect: { type: "string" },
    },
});
if (!opt.url) {
    console.error("serve-load: --url is required");
    process.exit(2);
}
const clients = Number(opt.clients), seconds = Number(opt.seconds);
const texts = opt.texts
    ? readFileSync(opt.texts, "utf8").split("\n").filter((t) => t.length)
    : ["a photo of a cat", "a rocket on the launch pad", "a cup of coffee", "an astronaut"];
const images = opt.images.split(",").filter((p) => p.length).map((path) => ({
    path,
    uri: "data:image/png;base64," + readFileSync(path).toString("base64"),
}));
if (opt.mix !== "texts" && !images.length) {
    console.error("serve-load: --images is needed unless --mix texts");
    process.exit(2);
}
const expect = new Map();
if (opt.expect)
    for (const line of readFileSync(opt.expect, "utf8").split("\n"))
        if (line.length) {
            const r = JSON.parse(line);
            expect.set(r.key, r.embedding);
        }

const stats = { requests: 0, failed: 0, mismatched: 0, texts: 0, images: 0, errors: [] };
// the rates count what finished within the --seconds, not the requests still in flight then
const inWindow = { texts: 0, images: 0 };
const latencies = [];
let seed = 12345;
const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648; // the same sequence every run
    return seed % n;
};

function note(msg) {
    if (stats.errors.length < 5) stats.errors.push(msg);
}

async function one(kind) {
    const keys = [], input = [];
    if (kind === "texts") {
        for (let k = 1 + rand(3); k > 0; k--) {
            const t = texts[rand(texts.length)];
            keys.push("t:" + t);
            input.push(t);
        }
    } else {
        const im = images[rand(images.length)];
        keys.push("i:" + im.path);
        input.push({ image: im.uri });
    }
    const t0 = performance.now();
    let res, body;
    try {
        res = await fetch(opt.url + "/v1/embeddings", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ model: "jina-clip-v1", input }),
        });
        body = await res.json();
    } catch (e) {
        stats.requests++;
        stats.failed++;
        note(String(e));
        return;
    }
    latencies.push(performance.now() - t0);
    stats.requests++;
    if (res.status !== 200 || !Array.isArray(body.data) || body.data.length !== input.length) {
        stats.failed++;
        note(`HTTP ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
        return;
    }
    stats[kind] += input.length;
    if (performance.now() <= until)
        inWindow[kind] += input.length;
    body.data.forEach((d, i) => {
        const want = expect.get(keys[i]);
        if (want && (want.length !== d.embedding.length || want.some((x, j) => x !== d.embedding[j]))) {
            stats.mismatched++;
            note(`${keys[i].slice(0, 60)}: the vector differs from the CLI's`);
        }
    });
}

const start = performance.now();
const until = start + seconds * 1000;

async function client(c) {
    for (let i = 0; performance.now() < until; i++) {
        const kind = opt.mix === "mixed" ? ((c + i) % 2 ? "images" : "texts") : opt.mix;
        await one(kind);
    }
}

await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
console.log(JSON.stringify({
    ...stats,
    seconds: Number(elapsed.toFixed(3)),
    texts_per_s: Number((inWindow.texts / seconds).toFixed(3)),
    images_per_s: Number((inWindow.images / seconds).toFixed(3)),
    p50_ms: Number(pct(0.5).toFixed(1)),
    p99_ms: Number(pct(0.99).toFixed(1)),
}));
process.exit(stats.failed || stats.mismatched ? 1 : 0);
