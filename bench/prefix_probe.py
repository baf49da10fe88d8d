"""Does a bidirectional prompt give the frozen MiniLM better features where the first label is
predicted? A linear probe, causal vs prefix-LM attention (model.prompt_attention).

    python bench/prefix_probe.py

Untrained `minilm` backbone, the hidden state at the position that predicts the first label
token (prompt + `{"labels":["`), for the first 3,000 GoEmotions train rows and 1,500 dev rows;
a class-balanced multinomial logistic regression on each row's first gold label; top-1
Macro-F1 and accuracy on dev. Prints one line per attention; takes ~3 minutes on 2 cores.
"""

import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from emoloom.config import ModelConfig
from emoloom.data import load_split
from emoloom.labels import GOEMOTIONS
from emoloom.modeling import load_backbone
from emoloom.prompting import PromptEncoder

torch.manual_seed(0)
tr = load_split("goemotions", "train").records[:3000]
dv = load_split("goemotions", "dev").records[:1500]


def feats(att, recs):
    bb = load_backbone(ModelConfig(name="minilm", prompt_attention=att), seed=0)
    lm = bb.lm.eval()
    enc = PromptEncoder(bb.tokenizer, GOEMOTIONS, max_length=256)
    out = []
    with torch.no_grad():
        for i in range(0, len(recs), 64):
            e = [enc.prefix(r) for r in recs[i : i + 64]]
            w = max(len(x.input_ids) for x in e)
            ids = torch.zeros((len(e), w), dtype=torch.long)
            m = torch.zeros_like(ids)
            for b, x in enumerate(e):
                ids[b, : len(x.input_ids)] = torch.tensor(x.input_ids)
                m[b, : len(x.input_ids)] = 1
            h = lm.hidden(ids, m, torch.tensor([x.prompt_len for x in e]))
            last = torch.tensor([len(x.input_ids) - 1 for x in e])
            out.append(h[torch.arange(len(e)), last].numpy())
    return np.concatenate(out)


ytr = [GOEMOTIONS.labels.index(r.labels[0]) for r in tr]
ydv = [GOEMOTIONS.labels.index(r.labels[0]) for r in dv]
for att in ("causal", "bidirectional"):
    t = time.time()
    Xtr, Xdv = feats(att, tr), feats(att, dv)
    clf = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced").fit(Xtr, ytr)
    p = clf.predict(Xdv)
    print(
        att,
        "top1 macroF1",
        round(f1_score(ydv, p, average="macro"), 4),
        "acc",
        round((p == np.array(ydv)).mean(), 4),
        round(time.time() - t, 1),
        "s",
    )
