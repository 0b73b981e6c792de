"""PyTorch job of the e2e tier: DistributedDataParallel over gloo trains a small linear model on
CPU, one rank per node, rendezvous as Batch AI's recipes passed it.

Usage: python ddp_train.py --dist-url URL --rank R --world-size N --backend gloo --out DIR
"""

import argparse
import os
import socket

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--dist-url", required=True)
parser.add_argument("--rank", type=int, required=True)
parser.add_argument("--world-size", type=int, required=True)
parser.add_argument("--backend", default="gloo")
parser.add_argument("--out", required=True)
args = parser.parse_args()

dist.init_process_group(args.backend, init_method=args.dist_url, rank=args.rank, world_size=args.world_size)
rank, world = dist.get_rank(), dist.get_world_size()
host = socket.gethostname()
address = socket.gethostbyname(host)
peers: list = [None] * world
dist.all_gather_object(peers, (rank, host, address))
print(f"rank {rank} of {world} on {host} ({address}), backend {dist.get_backend()}", flush=True)
for r, h, a in peers:
    if r != rank:
        print(f"rank {rank}: peer rank {r} on {h} at {a}", flush=True)

# Each rank trains on its own shard of y = x @ [1, -2, 3, 0.5] + 0.25; DDP averages the gradients.
torch.manual_seed(0)
model = DistributedDataParallel(torch.nn.Linear(4, 1))
generator = torch.Generator().manual_seed(100 + rank)
x = torch.randn(256, 4, generator=generator)
y = x @ torch.tensor([[1.0], [-2.0], [3.0], [0.5]]) + 0.25
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(60):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    if step % 20 == 0 or step == 59:
        print(f"rank {rank}: step {step} loss {loss.item():.6f}", flush=True)

weights = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered = [torch.zeros_like(weights) for _ in range(world)]
dist.all_gather(gathered, weights)
same = all(torch.allclose(g, weights) for g in gathered)
print(f"rank {rank}: weights identical across ranks: {same}; weights {weights.tolist()}", flush=True)
if rank == 0:
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.module.state_dict(), os.path.join(args.out, "model.pt"))
    print(f"rank 0: saved model to {args.out}", flush=True)
dist.destroy_process_group()
