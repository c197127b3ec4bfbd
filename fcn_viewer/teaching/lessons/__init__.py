"""The paper's "why" lessons as Qt-free computations on the loaded net's real tensors: classifier → FCN, why scores
are summed (commute), learned vs bilinear upsampling; and their slides."""
