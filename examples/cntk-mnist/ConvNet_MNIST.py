"""The Batch AI CNTK quickstart's training script, written for this project: a small convolutional network
trained with CNTK 2.7's Python API on MNIST-like data in CNTK's text format (CTF).

    python ConvNet_MNIST.py DATA_DIR MODEL_DIR                # one process
    mpirun -np N python ConvNet_MNIST.py DATA_DIR MODEL_DIR   # data-parallel over N MPI ranks

DATA_DIR holds Train-28x28_cntk_text.txt and Test-28x28_cntk_text.txt, one sample a line
(`|labels <10 one-hot values> |features <784 pixel values 0-255>`), read with CNTK's own reader
(MinibatchSource over a CTFDeserializer). CNTK's ProgressPrinter logs each epoch; after each
epoch rank 0 saves the model in CNTK's format as MODEL_DIR/ConvNet_MNIST_<epoch>.dnn (loadable with
cntk.load_model), and at the end it evaluates the last model on the test set. Under mpirun each rank reads
its own partition of the training data and CNTK's data_parallel_distributed_learner averages the gradients
over MPI, so every rank ends with the same weights. CNTK picks the device (a GPU when there is one, else
the CPU). EPOCHS sets the
number of epochs (default 10). Everything goes to stderr (Batch AI's stderr.txt), with CNTK's own messages,
as the quickstart's script did. Python 3.5-3.7, the versions CNTK 2.7 has builds for (so no f-strings).
"""

import os
import socket
import sys

# One stream, line by line, set before CNTK's import warns: CNTK's C++ core writes to stderr unbuffered,
# and Python 3.6 buffers a stderr that is no terminal.
sys.stderr = sys.stdout = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 (for the whole run)

import cntk as C  # noqa: E402
import numpy as np  # noqa: E402
from cntk.train import distributed  # noqa: E402

EPOCHS = int(os.environ.get("EPOCHS", "10"))
MINIBATCH = 64  # samples per step over all ranks
TRAIN_FILE = "Train-28x28_cntk_text.txt"
TEST_FILE = "Test-28x28_cntk_text.txt"
IMAGE = (1, 28, 28)  # channels, height, width: the CTF's 784 pixel values, row by row
CLASSES = 10


def reader(path, train):
    """CNTK's reader over a CTF file: shuffled and repeating for training, one pass in order for testing."""
    streams = C.io.StreamDefs(
        features=C.io.StreamDef(field="features", shape=IMAGE[1] * IMAGE[2]),
        labels=C.io.StreamDef(field="labels", shape=CLASSES),
    )
    deserializer = C.io.CTFDeserializer(path, streams)
    # Chunks of 64 KB (CNTK's default is 32 MB): the reader hands whole chunks to the MPI ranks, so a
    # small file needs several for every rank to get a share; shuffled across all of them.
    deserializer["chunkSizeInBytes"] = 64 * 1024
    return C.io.MinibatchSource(
        deserializer,
        randomize=train,
        randomization_window_in_chunks=1000 if train else 0,
        max_sweeps=C.io.INFINITELY_REPEAT if train else 1,
    )


def conv_net(features):
    """Two convolution + max-pooling stages and a dense layer (CNTK's ConvNet_MNIST, narrower)."""
    scaled = C.element_times(C.constant(1.0 / 256), features)  # pixels 0-255 to [0, 1)
    with C.layers.default_options(activation=C.relu, pad=True):
        return C.layers.Sequential(
            [
                C.layers.Convolution2D((5, 5), 8),
                C.layers.MaxPooling((2, 2), strides=(2, 2)),
                C.layers.Convolution2D((5, 5), 16),
                C.layers.MaxPooling((3, 3), strides=(3, 3)),
                C.layers.Dense(CLASSES, activation=None),
            ]
        )(scaled)


def count_samples(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ConvNet_MNIST.py DATA_DIR MODEL_DIR")
    data_dir, model_dir = sys.argv[1], sys.argv[2]
    rank, workers = distributed.Communicator.rank(), distributed.Communicator.num_workers()
    print(
        "rank {} of {} on {}: data directory {}: {}".format(
            rank, workers, socket.gethostname(), data_dir, " ".join(sorted(os.listdir(data_dir)))
        ),
        flush=True,
    )
    np.random.seed(1)
    C.cntk_py.set_fixed_random_seed(1)  # the same initial weights on every rank

    features = C.input_variable(IMAGE, name="features")
    labels = C.input_variable(CLASSES, name="labels")
    model = conv_net(features)
    loss = C.cross_entropy_with_softmax(model, labels)
    errors = C.classification_error(model, labels)

    train_path = os.path.join(data_dir, TRAIN_FILE)
    epoch_size = count_samples(train_path)
    train = reader(train_path, train=True)
    inputs = {features: train.streams.features, labels: train.streams.labels}
    learner = C.learners.adam(
        model.parameters,
        lr=C.learning_parameter_schedule_per_sample(0.002),
        momentum=C.momentum_schedule(0.9, minibatch_size=MINIBATCH),
    )
    if workers > 1:
        learner = distributed.data_parallel_distributed_learner(learner)
    # Progress from rank 0 only: the distributed learner aggregates loss and metric over all ranks.
    progress = [C.logging.ProgressPrinter(tag="Training", num_epochs=EPOCHS)] if rank == 0 else []
    trainer = C.Trainer(model, (loss, errors), [learner], progress)
    C.logging.log_number_of_parameters(model)

    if rank == 0 and not os.path.isdir(model_dir):
        os.makedirs(model_dir)
    local_samples = 0
    for epoch in range(EPOCHS):
        end = (epoch + 1) * epoch_size
        # Sample counts are over all ranks, so every rank takes the same number of steps.
        while trainer.total_number_of_samples_seen < end:
            size = min(MINIBATCH, end - trainer.total_number_of_samples_seen)
            data = train.next_minibatch(
                size, input_map=inputs, num_data_partitions=workers, partition_index=rank
            )
            local_samples += data[labels].num_samples if data else 0
            trainer.train_minibatch(data)
        trainer.summarize_training_progress()
        if rank == 0:
            model.save(os.path.join(model_dir, "ConvNet_MNIST_{}.dnn".format(epoch)))

    checksum = sum(float(np.sum(p.value)) for p in model.parameters)
    print(
        "rank {} of {}: trained on {} samples of its partition; parameter checksum {:.6f}".format(
            rank, workers, local_samples, checksum
        ),
        flush=True,
    )
    if rank == 0:
        test = reader(os.path.join(data_dir, TEST_FILE), train=False)
        test_inputs = {features: test.streams.features, labels: test.streams.labels}
        while True:
            data = test.next_minibatch(100, input_map=test_inputs)
            if not data:
                break
            trainer.test_minibatch(data)
        trainer.summarize_test_progress()
    distributed.Communicator.finalize()


if __name__ == "__main__":
    main()
