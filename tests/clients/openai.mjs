// The OpenAI SDK against jclip serve: node openai.mjs BASE ENCODING TEXT...
// ENCODING is float or base64 (asked for explicitly), or default (none given: the SDK then
// asks for base64 and decodes it itself). Prints one JSON array per vector.
import OpenAI from "openai";

const [base, encoding, ...texts] = process.argv.slice(2);
// No retries: a failing server should fail the test at once, not after backoff.
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0 });
const body = { model: "jina-clip-v1", input: texts };
if (encoding !== "default") body.encoding_format = encoding;
const res = await client.embeddings.create(body);
for (const { embedding } of res.data) {
  // Asked for explicitly, base64 comes back as the string: little-endian float32s. A list
  // instead would mean the server ignored the encoding asked for.
  let v = embedding;
  if (encoding === "base64") {
    if (typeof v !== "string") throw new Error("base64 asked for, not a string returned");
    const buf = Buffer.from(v, "base64");
    v = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
  }
  console.log(JSON.stringify(v));
}
