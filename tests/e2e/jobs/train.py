"""Training script of the e2e single-node jobs: fits y = 3x + 1 by gradient descent (plain Python, any
image), prints its progress, a line to stderr, and what the job gave it, and saves the model.

Usage: python train.py OUTPUT_DIR [EPOCHS]
"""

import json
import os
import sys

out, epochs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
rate = float(os.environ.get("LEARNING_RATE", "0.1"))
print(f"gpus={os.environ.get('AZ_BATCHAI_NUM_GPUS')} devices={os.environ.get('NVIDIA_VISIBLE_DEVICES', '')}")
print(f"secret API_TOKEN: {'set' if os.environ.get('API_TOKEN') else 'missing'}, learning rate {rate}")
data = [(x / 10, 3 * x / 10 + 1) for x in range(20)]
w = b = 0.0
for epoch in range(epochs):
    gw = sum(2 * (w * x + b - y) * x for x, y in data) / len(data)
    gb = sum(2 * (w * x + b - y) for x, y in data) / len(data)
    w, b = w - rate * gw, b - rate * gb
    loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
    if epoch % 50 == 0 or epoch == epochs - 1:
        print(f"epoch {epoch}: loss {loss:.6f}", flush=True)
print("a line on stderr", file=sys.stderr)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.json"), "w") as f:
    json.dump({"w": w, "b": b, "loss": loss}, f)
print(f"saved model to {out}")
