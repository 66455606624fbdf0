// LangChain's JinaEmbeddings against jclip serve: node langchain.mjs BASE MODE ARG...
// MODE is documents (ARGs are texts), images (ARGs are image files, sent as data URIs) or
// query (one text). Prints one JSON array per vector.
import { readFileSync } from "node:fs";
import { JinaEmbeddings } from "@langchain/community/embeddings/jina";

const [base, mode, ...args] = process.argv.slice(2);
// The server serves jina-clip-v1 only; the class's default model is another.
const jina = new JinaEmbeddings({ apiKey: "unused", model: "jina-clip-v1" });
// The endpoint is a field with Jina's URL, not a constructor option.
jina.baseUrl = base + "/v1/embeddings";

const dataUri = (file) => {
  const type = file.endsWith(".png") ? "png" : "jpeg";
  return `data:image/${type};base64,` + readFileSync(file).toString("base64");
};

let vecs;
if (mode === "documents") vecs = await jina.embedDocuments(args);
else if (mode === "images") vecs = await jina.embedDocuments(args.map((f) => ({ image: dataUri(f) })));
else if (mode === "query") vecs = [await jina.embedQuery(args[0])];
else throw new Error(`unknown mode ${mode}`);
for (const v of vecs) console.log(JSON.stringify(v));
