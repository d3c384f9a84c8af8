"""The official `openai` Python package and LangChain against a gradnet node,
unchanged: whole and streamed chat, completions, stop sequences, max_tokens ->
length, usage counts, structured outputs, log-probabilities, several choices,
tool calls, errors. Usage: openai_client.py BASE_URL (models `smollm2` and
`tiny` published)."""
import json
import sys

import openai
from pydantic import BaseModel, Field

base = sys.argv[1]
client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")

ids = [m.id for m in client.models.list()]
assert "smollm2" in ids and "tiny" in ids, ids

messages = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
r = client.chat.completions.create(model="smollm2", messages=messages, temperature=0, max_tokens=30)
text = r.choices[0].message.content
assert "Paris" in text, text
assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
assert r.model_extra["gradnet_receipt"]["kind"] == "llm"

# streamed: the same text, a finish reason, usage when asked for
pieces, finish, usage = [], None, None
for chunk in client.chat.completions.create(
    model="smollm2", messages=messages, temperature=0, max_tokens=30, stream=True,
    stream_options={"include_usage": True},
):
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
assert "".join(pieces) == text, ("".join(pieces), text)
assert finish == "stop"
assert usage is not None and usage.completion_tokens == r.usage.completion_tokens

# max_tokens -> length
r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}],
                                   temperature=0, max_tokens=4)
assert r.choices[0].finish_reason in ("length", "stop")
if r.choices[0].finish_reason == "length":
    assert r.usage.completion_tokens == 4

# a stop sequence taken from the greedy text ends it there
full = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}],
                                      temperature=0, max_tokens=40).choices[0].message.content
if len(full) > 8:
    stop = full[4:6]
    cut = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}],
                                         temperature=0, max_tokens=40, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == full[: full.index(stop)], (cut.choices[0].message.content, full)

# completions, whole and streamed
c = client.completions.create(model="smollm2", prompt="The capital of France is", temperature=0, max_tokens=5)
assert c.choices[0].finish_reason == "length" and c.usage.completion_tokens == 5
streamed = "".join(ch.choices[0].text for ch in client.completions.create(
    model="smollm2", prompt="The capital of France is", temperature=0, max_tokens=5, stream=True) if ch.choices)
assert streamed == c.choices[0].text, (streamed, c.choices[0].text)

# errors surface as the client's exception types
try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "no-such-model" in str(e)
try:
    client.chat.completions.create(model="tiny", messages=[{"role": "wizard", "content": "x"}])
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert "wizard" in str(e)

# structured outputs: the client's own `parse` sends a strict json_schema
class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)
    population_millions: float


ask = [{"role": "user", "content": "Describe the city of Paris."}]
try:
    r = client.chat.completions.parse(model="smollm2", messages=ask, response_format=City,
                                      temperature=0, max_tokens=100)
except openai.LengthFinishReasonError as e:
    raise AssertionError(e.completion.choices[0].message.content)
city = r.choices[0].message.parsed
assert isinstance(city, City), r
# properties come in the order the schema lists them
assert r.choices[0].message.content.startswith('{"name"'), r.choices[0].message.content

# log-probabilities: whole, streamed (the same), and on completions
r = client.chat.completions.create(model="smollm2", messages=messages, temperature=0, max_tokens=10,
                                   logprobs=True, top_logprobs=3)
lp = r.choices[0].logprobs.content
assert len(lp) == r.usage.completion_tokens, (len(lp), r.usage)
for t in lp:
    assert len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token, t
    assert t.logprob <= 0 and t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob
streamed = []
for chunk in client.chat.completions.create(model="smollm2", messages=messages, temperature=0,
                                            max_tokens=10, logprobs=True, top_logprobs=3, stream=True):
    for c in chunk.choices:
        if c.logprobs and c.logprobs.content:
            streamed.extend(c.logprobs.content)
assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in lp]
c = client.completions.create(model="smollm2", prompt="The capital of France is", temperature=0,
                              max_tokens=5, logprobs=2)
assert len(c.choices[0].logprobs.tokens) == 5 and len(c.choices[0].logprobs.top_logprobs[0]) == 2, c
assert c.choices[0].logprobs.text_offset[0] == 0

# several choices: seeded, each with its receipt, the same again
def two():
    r = client.chat.completions.create(model="smollm2", messages=ask, temperature=0.9, seed=7,
                                       max_tokens=12, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    receipts = [c.model_extra["gradnet_receipt"] for c in r.choices]
    assert receipts[0]["request_hash"] != receipts[1]["request_hash"]
    return [c.message.content for c in r.choices]
assert two() == two()

# tool calls with a model whose template has no tools (the node teaches the
# convention and constrains the answer to a valid call)
tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                   "required": ["city"]}}}]
weather = [{"role": "user", "content": "What is the weather like in Paris today?"}]
r = client.chat.completions.create(model="smollm2", messages=weather, tools=tools,
                                   tool_choice="required", temperature=0, max_tokens=60)
call = r.choices[0].message.tool_calls[0]
assert r.choices[0].finish_reason == "tool_calls", r
assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
# the call answered, the conversation goes on
r2 = client.chat.completions.create(model="smollm2", tools=tools, temperature=0, max_tokens=60, messages=weather + [
    r.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 degrees."},
])
assert r2.choices[0].finish_reason in ("stop", "tool_calls", "length"), r2

# unknown endpoints answer with an error body
try:
    client.get("/nowhere", cast_to=object)
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "Unknown request URL" in str(e), e
assert client.models.retrieve("smollm2").id == "smollm2"

# embeddings: floats, and base64 (the client's default) decoded to the same
e = client.embeddings.create(model="minilm", input=["A cat sits on the mat.", "A kitten is on a rug."],
                             encoding_format="float")
assert len(e.data) == 2 and len(e.data[0].embedding) == 384 and e.usage.prompt_tokens > 0
b = client.embeddings.create(model="minilm", input="A cat sits on the mat.")
assert b.data[0].embedding == e.data[0].embedding

# the Responses API, text in and out
resp = client.responses.create(model="smollm2", instructions="You are a helpful assistant.",
                               input="What is the capital of France?", temperature=0, max_output_tokens=30)
assert resp.status == "completed" and "Paris" in resp.output_text, resp
assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
parsed = client.responses.parse(model="smollm2", input="Describe the city of Paris.", temperature=0,
                                max_output_tokens=200, text_format=City)
assert isinstance(parsed.output_parsed, City), parsed
print("openai client: ok")

# LangChain's OpenAI integration, unchanged
from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

llm = ChatOpenAI(model="smollm2", base_url=f"{base}/v1", api_key="unused", temperature=0, max_tokens=100)
# with_structured_output's default method is response_format json_schema
city = llm.with_structured_output(City).invoke("Describe the city of Paris.")
assert isinstance(city, City), city
text = "".join(c.content for c in llm.stream("Name three colours."))
assert text, text


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny in {city}, 24 degrees."


bound = llm.bind_tools([get_weather], tool_choice="get_weather")
msg = bound.invoke("What is the weather like in Paris today?")
assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather", msg
answer = get_weather.invoke(msg.tool_calls[0]["args"])
follow = llm.bind_tools([get_weather]).invoke([
    ("human", "What is the weather like in Paris today?"), msg,
    ToolMessage(answer, tool_call_id=msg.tool_calls[0]["id"]),
])
assert follow.content or follow.tool_calls, follow
from langchain_openai import OpenAIEmbeddings  # noqa: E402

# LangChain counts tokens with OpenAI's tokenizer unless told the model is not OpenAI's
emb = OpenAIEmbeddings(model="minilm", base_url=f"{base}/v1", api_key="unused",
                       check_embedding_ctx_length=False)
docs = emb.embed_documents(["A cat sits on the mat.", "Stock markets fell sharply today."])
q = emb.embed_query("A kitten is on a rug.")
assert len(docs) == 2 and len(q) == 384
assert sum(a * b for a, b in zip(q, docs[0])) > sum(a * b for a, b in zip(q, docs[1]))
print("langchain: ok")
