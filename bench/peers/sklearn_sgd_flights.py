#!/usr/bin/env python3
"""The scikit-learn peer of the end-to-end bench (issue #15 item 4):
SGDClassifier(loss="log_loss", penalty="l2") in one process on the rows the bench prepared.

Data: --x, rows x D float32 (row-major, already standardized by the bench), --y, rows x uint8
labels, read with numpy.fromfile (sklearn converts X to float64 itself; that copy counts here).
Objective: mean log-loss + alpha * (1/2)||w||^2, the intercept not penalized (sklearn's L2 is
alpha * R(w) with R = ||w||^2 / 2), so alpha = the bench's lambda.
Update rule (where it differs from dpt's and torch's mini-batch SGD): one row at a time (batch size
1, no other choice in SGDClassifier), the rows shuffled every epoch (its own seeded shuffle); L2
applied per row by rescaling w; the intercept's step is scaled by 0.01 for sparse input only (not
here). --schedule constant: eta = eta0 = the bench's lr for every row (the closest match);
--schedule optimal: sklearn's default, eta = 1 / (alpha * (t + t0)), t the rows seen.
max_iter = --epochs with tol=None (so exactly that many epochs, no early stop); average=False.

Writes the model (--out, JSON: w, b, phases in seconds) and prints one JSON line.
  /usr/bin/python3 sklearn_sgd_flights.py --x X.f32 --y y.u8 --D 15 --lr 0.1 --l2 1e-4 \
      --epochs 1 --out model.json
"""
import argparse
import json
import os
import time

T_START = time.perf_counter()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--x", required=True)
    p.add_argument("--y", required=True)
    p.add_argument("--D", type=int, required=True)
    p.add_argument("--lr", type=float, default=0.1, help="eta0 of --schedule constant")
    p.add_argument("--l2", type=float, default=1e-4, help="alpha")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--fraction", type=float, default=0.0,
                   help="in (0, 1): one epoch stopped after this share of the rows (overrides --epochs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--schedule", choices=["constant", "optimal"], default="constant")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"
    t0 = time.perf_counter()
    import warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier
    t_import = time.perf_counter()
    X = np.fromfile(a.x, dtype=np.float32).reshape(-1, a.D)
    y = np.fromfile(a.y, dtype=np.uint8)[: X.shape[0]]
    epochs = a.epochs
    if 0 < a.fraction < 1:
        # An epoch stopped after m rows: SGDClassifier cannot stop mid-epoch, but its per-row rate
        # (constant, or 1/(alpha*(t0 + t)) with t0 from alpha alone) depends only on the rows seen,
        # so one epoch over m rows drawn by a seeded permutation is that epoch's first m updates
        # in another random order.
        m = int(np.ceil(a.fraction * X.shape[0]))
        idx = np.random.default_rng(a.seed).permutation(X.shape[0])[:m]
        X, y = X[idx], y[idx]
        epochs = 1
    t_load = time.perf_counter()
    clf = SGDClassifier(loss="log_loss", penalty="l2", alpha=a.l2, learning_rate=a.schedule, eta0=a.lr,
                        max_iter=epochs, tol=None, shuffle=True, random_state=a.seed, average=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epoch count on purpose
        clf.fit(X, y)
    t_train = time.perf_counter()
    import sklearn
    out = {
        "w": [float(v) for v in clf.coef_.ravel()], "b": float(clf.intercept_[0]),
        "phases": {"import_s": t_import - t0, "load_s": t_load - t_import, "train_s": t_train - t_load,
                   "steps": int(clf.t_) - 1},
        "schedule": a.schedule, "lr": a.lr, "l2": a.l2, "epochs": epochs, "fraction": a.fraction, "rows": int(X.shape[0]),
        "sklearn": sklearn.__version__,
    }
    with open(a.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(a.out + ".tmp", a.out)
    out["wall_s"] = time.perf_counter() - T_START
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
