"""The fixed emotion label set. Every table, head and metric uses this order."""

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
NUM_EMOTIONS = len(EMOTIONS)
PROB_COLUMNS: tuple[str, ...] = tuple(f"prob_{e}" for e in EMOTIONS)
