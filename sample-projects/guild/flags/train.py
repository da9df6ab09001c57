"""Flags as argparse arguments: prints what it received (no training)."""

import argparse
import os

parser = argparse.ArgumentParser(description="Train a model")
parser.add_argument("--lr", type=float, default=0.1, help="Learning rate")
parser.add_argument("--epochs", type=int, default=5, help="Number of epochs")
parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"], help="Optimizer to use")
parser.add_argument("--dropout", type=float, help="Dropout rate")
parser.add_argument("--layers", type=int, nargs="+", default=[64, 32], help="Hidden layer sizes")
parser.add_argument("--verbose", action="store_true", help="Print more")
parser.add_argument("--no-shuffle", dest="shuffle", action="store_false", help="Keep the data order")
parser.add_argument("--name", default="mnist", help="Data set name")


def main():
    args = parser.parse_args()
    for name, value in sorted(vars(args).items()):
        print("arg", name, repr(value))
    for name in sorted(os.environ):
        if name.startswith("FLAG_"):
            print("env", name, repr(os.environ[name]))


if __name__ == "__main__":
    main()
