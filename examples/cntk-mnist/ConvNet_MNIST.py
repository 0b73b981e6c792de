"""Stand-in for the Batch AI CNTK quickstart's ConvNet_MNIST.py: CNTK has no build for today's Python, so
this trains the same kind of model with PyTorch, from the same command line and the same input files.

    python ConvNet_MNIST.py DATA_DIR OUTPUT_DIR

DATA_DIR holds Train-28x28_cntk_text.txt and Test-28x28_cntk_text.txt in CNTK's text format
(`|labels <10 one-hot values> |features <784 pixel values 0-255>`, one sample a line); OUTPUT_DIR gets a
model per epoch, ConvNet_MNIST_<epoch>.dnn (a PyTorch state dict here, CNTK's model format there). Progress
lines follow CNTK's progress printer. Runs on the CPU when there is no GPU.
"""

import os
import sys
import time

import torch
from torch import nn

EPOCHS = int(os.environ.get("EPOCHS", "10"))
MINIBATCH = 32


def read_ctf(path):
    """(images N x 1 x 28 x 28 in [0, 1], labels N) from a CNTK text format file."""
    images, labels = [], []
    with open(path) as f:
        for line in f:
            _, label_part, feature_part = line.split("|")
            label_values = label_part.split()[1:]
            labels.append(label_values.index("1"))
            images.append([float(v) / 255.0 for v in feature_part.split()[1:]])
    return torch.tensor(images).reshape(-1, 1, 28, 28), torch.tensor(labels)


def conv_net():
    # CNTK's ConvNet_MNIST: two convolution + pooling stages and a dense layer, smaller here.
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
    )  # fmt: skip


def main():
    data_dir, output_dir = sys.argv[1], sys.argv[2]
    print(f"Data directory {data_dir}: {' '.join(sorted(os.listdir(data_dir)))}", flush=True)
    train_x, train_y = read_ctf(os.path.join(data_dir, "Train-28x28_cntk_text.txt"))
    test_x, test_y = read_ctf(os.path.join(data_dir, "Test-28x28_cntk_text.txt"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"Selected {device.upper()} as the process wide default device.", flush=True)
    torch.manual_seed(1)
    model = conv_net().to(device)
    params = list(model.parameters())
    print(
        f"Training {sum(p.numel() for p in params)} parameters in {len(params)} parameter tensors.",
        flush=True,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    os.makedirs(output_dir, exist_ok=True)
    n = len(train_y)
    for epoch in range(EPOCHS):
        start = time.time()
        order = torch.randperm(n)
        total_loss, errors = 0.0, 0
        model.train()
        for i in range(0, n, MINIBATCH):
            idx = order[i : i + MINIBATCH]
            x, y = train_x[idx].to(device), train_y[idx].to(device)
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            errors += (out.argmax(1) != y).sum().item()
        seconds = time.time() - start
        print(
            f"Finished Epoch[{epoch + 1} of {EPOCHS}]: [Training] loss = {total_loss / n:.6f} * {n}, "
            f"metric = {100.0 * errors / n:.2f}% * {n} {seconds:.3f}s ({n / seconds:.1f} samples/s);",
            flush=True,
        )
        torch.save(model.state_dict(), os.path.join(output_dir, f"ConvNet_MNIST_{epoch}.dnn"))
    model.eval()
    with torch.no_grad():
        errors = (model(test_x.to(device)).argmax(1) != test_y.to(device)).sum().item()
    print(
        f"Final Results: Minibatch[1-1]: errs = {100.0 * errors / len(test_y):.2f}% * {len(test_y)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
