"""The official `openai` Python package against a gradnet node, unchanged:
whole and streamed chat, completions, stop sequences, max_tokens -> length,
usage counts, errors. Usage: openai_client.py BASE_URL (models `smollm2` and
`tiny` published)."""
import sys

import openai

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
print("openai client: ok")
