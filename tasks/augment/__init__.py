"""The augment stage: each training image's copies under the augment policy, and the arms' training sets."""
