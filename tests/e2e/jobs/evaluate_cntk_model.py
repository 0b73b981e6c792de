"""Evaluate a CNTK model file on a CTF test set, in the CNTK image (Python 3.6, cntk 2.7):

    python evaluate_cntk_model.py MODEL.dnn Test-28x28_cntk_text.txt

Loads the model with cntk.load_model (what a Batch AI user did with the .dnn files a job left in its
MODEL output directory), runs it on every test sample and prints
`accuracy: <correct> of <total> = <percent>%` as its last line. Parses the CTF lines itself (numpy), so
that the check does not share the training script's reader.
"""

import sys

import cntk as C
import numpy as np


def read_ctf(path):
    images, labels = [], []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            fields = {}
            for part in line.split("|")[1:]:
                name, *values = part.split()
                fields[name] = values
            labels.append(int(np.argmax(np.array(fields["labels"], dtype=np.float32))))
            images.append(np.array(fields["features"], dtype=np.float32))
    return np.stack(images), np.array(labels)


def main():
    model_path, test_path = sys.argv[1], sys.argv[2]
    model = C.load_model(model_path)
    (features,) = model.arguments
    print(f"loaded {model_path}: input {features.name} {features.shape}, output {model.shape}")
    images, labels = read_ctf(test_path)
    scores = model.eval({features: images.reshape((-1, *features.shape))})
    predicted = np.argmax(np.asarray(scores).reshape(len(labels), -1), axis=1)
    correct = int(np.sum(predicted == labels))
    print(f"accuracy: {correct} of {len(labels)} = {100.0 * correct / len(labels):.2f}%")


if __name__ == "__main__":
    main()
