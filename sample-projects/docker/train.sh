#!/bin/sh
# A toy training loop: flags arrive as arguments, as in a local run.
lr=$1
epochs=$2
# In a container started by trk, PID 1 is the engine's init (docker-init).
echo "pid 1: $(cat /proc/1/comm); lr=$lr (FLAG_LR=$FLAG_LR); in $(pwd)"
i=1
while [ "$i" -le "$epochs" ]; do
  echo "epoch $i"
  echo "loss: 0.$((10 - i))"
  i=$((i + 1))
done
echo "accuracy: 0.9"
echo "model for lr=$lr" > model.txt
