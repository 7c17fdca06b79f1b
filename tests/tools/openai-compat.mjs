// Runs the official `openai` npm client against the gateway: a completion, a streamed completion and a streamed
// chat completion, each compared with the same request not streamed; then its structured-output helpers (a
// json_schema reply through `parse` and `stream`, JSON-parsed by the client and checked against the schema here)
// and a tool call round trip (a required strict tool, the call's result sent back as a `tool` message, a final
// answer), whole and streamed. Prints one JSON line; exits 1 on a mismatch.
// Usage: node openai-compat.mjs BASE_URL API_KEY MODEL
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, timeout: 60_000, maxRetries: 0 });
const sampling = { model, max_tokens: 24, temperature: 0.9, seed: 1234 };
const prompt = "The city at night was";
const messages = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Tell me about the sea." },
];

const completion = await client.completions.create({ ...sampling, prompt });
let streamedCompletion = "";
for await (const chunk of await client.completions.create({ ...sampling, prompt, stream: true })) {
  streamedCompletion += chunk.choices.map((c) => c.text).join("");
}

const chat = await client.chat.completions.create({ ...sampling, messages });
let streamedChat = "";
let usage = null;
for await (const chunk of await client.chat.completions.create({ ...sampling, messages, stream: true, stream_options: { include_usage: true } })) {
  streamedChat += chunk.choices.map((c) => c.delta?.content ?? "").join("");
  if (chunk.usage) usage = chunk.usage;
}

// Structured output: the client's own helpers parse the reply.
const schema = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, population: { type: "integer", minimum: 0, maximum: 100000 } },
  required: ["city", "population"],
  additionalProperties: false,
};
const structured = { model, messages, max_tokens: 100, temperature: 0.8, seed: 5, response_format: { type: "json_schema", json_schema: { name: "city", schema, strict: true } } };
const fits = (v) => v !== null && typeof v === "object" && Object.keys(v).every((k) => k in schema.properties)
  && typeof v.city === "string" && [...v.city].length <= 12 && Number.isInteger(v.population) && v.population >= 0 && v.population <= 100000;
const parsedCity = (await client.chat.completions.parse(structured)).choices[0].message.parsed;
// The stream helper parses only zod formats ($parseRaw); a raw json_schema reply is JSON.parse'd here.
const streamedCity = JSON.parse((await client.chat.completions.stream(structured).finalChatCompletion()).choices[0].message.content);

// A tool call round trip.
const tools = [{
  type: "function",
  function: {
    name: "get_weather", description: "The weather in a city", strict: true,
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 10 }, unit: { enum: ["c", "f"] } }, required: ["city", "unit"], additionalProperties: false },
  },
}];
const asking = { model, messages, tools, tool_choice: "required", max_tokens: 60, temperature: 0.8, seed: 9 };
const called = (await client.chat.completions.parse(asking)).choices[0];
const streamedCall = (await client.chat.completions.stream(asking).finalChatCompletion()).choices[0];
const call = called.message.tool_calls?.[0];
const args = call?.function.parsed_arguments;
const argsFit = args && Object.keys(args).length === 2 && typeof args.city === "string" && [...args.city].length <= 10 && ["c", "f"].includes(args.unit);
const answer = await client.chat.completions.create({
  model, max_tokens: 12, temperature: 0,
  messages: [...messages, { role: "assistant", content: null, tool_calls: [{ id: call?.id, type: "function", function: call?.function ? { name: call.function.name, arguments: call.function.arguments } : undefined }] },
    { role: "tool", tool_call_id: call?.id, content: JSON.stringify({ temperature: 21 }) }],
});

const models = await client.models.list();
// The client asks for base64 by default and decodes it; the float form must be the same vector (up to the float
// rounding of another batch shape: inputs are batched with whatever else is waiting).
const embedded = await client.embeddings.create({ model, input: ["The city at night was", "Hello"] });
const embeddedFloats = await client.embeddings.create({ model, input: ["The city at night was", "Hello"], encoding_format: "float" });
const sameEmbedding = embedded.data.length === 2 && embedded.data.every((d, i) => d.embedding.length > 0
  && d.embedding.length === embeddedFloats.data[i].embedding.length && d.embedding.every((v, k) => Math.abs(v - embeddedFloats.data[i].embedding[k]) <= 1e-4));
const result = {
  completion: completion.choices[0].text,
  streamedCompletion,
  chat: chat.choices[0].message.content,
  streamedChat,
  chatUsage: usage,
  models: models.data.map((m) => m.id),
  parsedCity,
  streamedCity,
  toolCall: call ? { name: call.function.name, arguments: call.function.arguments, finish: called.finish_reason } : null,
  streamedToolCall: streamedCall.message.tool_calls?.[0]?.function ?? null,
  answer: answer.choices[0].message.content,
  embedding: embedded.data[0].embedding,
  embeddingTokens: embedded.usage.prompt_tokens,
  sameEmbedding,
  fitsCity: fits(parsedCity),
  argsFit: !!argsFit,
};
console.log(JSON.stringify(result));
const same = result.completion === result.streamedCompletion && result.chat === result.streamedChat && result.completion.length > 0 && usage !== null
  && fits(parsedCity) && JSON.stringify(parsedCity) === JSON.stringify(streamedCity)
  && called.finish_reason === "tool_calls" && call?.function.name === "get_weather" && argsFit
  && streamedCall.finish_reason === "tool_calls" && result.streamedToolCall?.arguments === call.function.arguments
  && typeof result.answer === "string" && sameEmbedding;
process.exit(same ? 0 : 1);
