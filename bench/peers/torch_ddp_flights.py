#!/usr/bin/env python3
"""The PyTorch DDP peer of the end-to-end bench (issue #15 item 4), adapted from
../shared/peers/torch_ddp_lr.py: logistic regression (nn.Linear(D, 1) + BCEWithLogitsLoss, mean
over the batch) trained with plain SGD under DistributedDataParallel (gloo, CPU, 127.0.0.1), or
as one process (--single), on rows read from files instead of synthetic data.

Data: --x, rows x D float32 (row-major, already standardized by the bench), and --y, rows x uint8
labels, both read with numpy.fromfile (the bench prepares them once; reading them counts here).
Objective: mean log-loss + (l2/2)*||w||^2, the bias not penalized: torch's weight_decay on the
weight's parameter group only (SGD adds l2*w to the weight's gradient, as dpt's --l2 does).
Schedule: every epoch a seeded permutation of the rows (torch.Generator(seed + epoch), the same on
every rank); step k takes rows perm[k*B : (k+1)*B], rank r the r-th of W equal parts, so DDP's
average of the ranks' mean gradients is the mean over the global batch. A last partial batch
(rows % B) is dropped, as DataLoader(drop_last=True) would: B should divide the rows.

--max-steps N stops after N global steps, mid-epoch too (the bench's budgets below one epoch).

Writes the model (--out, JSON: w, b, phases in seconds) from rank 0, and prints one JSON line.
  /usr/bin/python3 torch_ddp_flights.py --x X.f32 --y y.u8 --D 15 --W 2 --B 256 --lr 0.1 \
      --l2 1e-4 --epochs 1 --out model.json
"""
import argparse
import json
import os
import socket
import sys
import time

T_START = time.perf_counter()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--x", required=True, help="rows x D float32 file (standardized features)")
    p.add_argument("--y", required=True, help="rows x uint8 labels (0/1)")
    p.add_argument("--D", type=int, required=True, help="features per row")
    p.add_argument("--W", type=int, default=2, help="world size (DDP processes)")
    p.add_argument("--single", action="store_true", help="one plain process, no torch.distributed")
    p.add_argument("--B", type=int, default=256, help="global mini-batch (split evenly over W ranks)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--l2", type=float, default=0.0, help="weight_decay of the weight (never the bias)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many steps, mid-epoch too (0: all of --epochs), as Lightning's max_steps")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="threads per process; 0 = max(1, 2 // W)")
    p.add_argument("--out", required=True, help="model JSON written by rank 0")
    a = p.parse_args(argv)
    if a.single:
        a.W = 1
    if a.W < 1 or a.B % a.W != 0:
        p.error("--W must be >= 1 and divide --B")
    if a.threads <= 0:
        a.threads = max(1, 2 // a.W)
    return a


def set_thread_env(threads):
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(threads)


def worker(rank, a, port):
    set_thread_env(a.threads)
    t0 = time.perf_counter()
    import numpy as np
    import torch
    import torch.nn as nn
    torch.set_num_threads(a.threads)
    t_import = time.perf_counter()
    ddp = not a.single
    if ddp:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        dist.init_process_group("gloo", rank=rank, world_size=a.W)
    t_init = time.perf_counter()
    X = torch.from_numpy(np.fromfile(a.x, dtype=np.float32).reshape(-1, a.D))
    y = torch.from_numpy(np.fromfile(a.y, dtype=np.uint8)[: X.shape[0]].astype(np.float32)).unsqueeze(1)
    n = X.shape[0]
    t_load = time.perf_counter()

    lin = nn.Linear(a.D, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
    model = DDP(lin) if ddp else lin
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.SGD([
        {"params": [lin.weight], "weight_decay": a.l2},
        {"params": [lin.bias], "weight_decay": 0.0},
    ], lr=a.lr)
    b_loc = a.B // a.W
    steps_per_epoch = n // a.B
    if ddp:
        dist.barrier()
    t_train0 = time.perf_counter()
    total_steps = steps_per_epoch * a.epochs if a.max_steps <= 0 else min(a.max_steps, steps_per_epoch * a.epochs)
    for epoch in range(a.epochs):
        if epoch * steps_per_epoch >= total_steps:
            break
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed + epoch))
        for k in range(min(steps_per_epoch, total_steps - epoch * steps_per_epoch)):
            lo = k * a.B + rank * b_loc
            idx = perm[lo:lo + b_loc]
            xb = X.index_select(0, idx)
            yb = y.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()  # DDP all-reduces (averages) the gradients here
            opt.step()
    if ddp:
        dist.barrier()
    t_train = time.perf_counter()
    out = None
    if rank == 0:
        w = lin.weight.detach().double().flatten().tolist()
        b = float(lin.bias.detach().double())
        phases = {
            "import_s": t_import - t0,
            "init_s": t_init - t_import,
            "load_s": t_load - t_init,
            "train_s": t_train - t_train0,
            "steps": total_steps,
        }
        out = {"w": w, "b": b, "phases": phases, "W": a.W, "B": a.B, "lr": a.lr, "l2": a.l2,
               "epochs": a.epochs, "rows": n, "droppedRowsPerEpoch": n - steps_per_epoch * a.B,
               "torch": torch.__version__}
        with open(a.out + ".tmp", "w") as f:
            json.dump(out, f)
        os.replace(a.out + ".tmp", a.out)
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    if out is not None:
        out["wall_in_rank0_s"] = time.perf_counter() - T_START
        print(json.dumps(out), flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    a = parse_args()
    set_thread_env(a.threads)
    if a.single:
        worker(0, a, 0)
        return
    import torch.multiprocessing as mp
    mp.spawn(worker, args=(a, free_port()), nprocs=a.W, join=True)


if __name__ == "__main__":
    main()
