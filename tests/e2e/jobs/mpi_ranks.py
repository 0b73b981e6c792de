"""Open MPI job of the e2e tier (mpi4py): every rank reports its host and address and those of the
other ranks, they agree on a sum, and each writes its own log into the output directory.

Usage: mpirun ... python mpi_ranks.py OUTPUT_DIR
"""

import os
import socket
import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
host = socket.gethostname()
address = socket.gethostbyname(host)
everyone = comm.allgather((rank, host, address))
total = comm.allreduce(rank + 1, op=MPI.SUM)
lines = [f"rank {rank} of {size} on {host} ({address}); allreduce sum {total}"]
lines += [f"rank {rank}: peer rank {r} on {h} at {a}" for r, h, a in everyone if r != rank]
for line in lines:
    print(line, flush=True)
os.makedirs(sys.argv[1], exist_ok=True)
with open(os.path.join(sys.argv[1], f"rank-{rank}.log"), "w") as f:
    f.write("\n".join(lines) + "\n")
