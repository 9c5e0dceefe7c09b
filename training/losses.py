"""Training losses in the power-law compressed magnitude domain (|.|^0.3), for mask models and
for models that output the clean magnitude."""
from __future__ import annotations


def _compressed_mse(estimate, clean):
    import tensorflow as tf

    from .models import COMPRESSION

    return tf.reduce_mean(tf.square(tf.pow(estimate + 1e-6, COMPRESSION) - tf.pow(clean + 1e-6, COMPRESSION)))


def spectral_loss(y_true, y_pred):
    """MSE between power-law compressed (|.|^0.3) masked-noisy and clean magnitudes.
    y_true is [clean | noisy] magnitudes along the last axis."""
    bins = y_pred.shape[-1]
    return _compressed_mse(y_pred * y_true[..., bins:2 * bins], y_true[..., :bins])


def spectral_loss_weighted(distortion_weight: float, residual_weight: float = 0.0,
                           postfilter: bool = False):
    """spectral_loss plus two optional prices, in the same compressed domain:

    * ``distortion_weight`` x the error of the mask applied to the clean magnitude alone:
      a price on attenuating speech, which a small model otherwise pays for noise removal
      with (speech distortion against residual noise);
    * ``residual_weight`` x the squared overshoot of the masked noisy magnitude above the
      clean one (only where it is louder): a price on residual noise, the error PESQ
      weighs more than missing speech (its asymmetric disturbance).

    With ``postfilter`` y_true carries the runtime post-filter's factors after the two
    magnitudes, and every term scores ``mask x factor``, the gain the runtime applies:
    the model is trained for what the post-filter leaves, not for the whole job.
    """
    if not distortion_weight and not residual_weight and not postfilter:
        return spectral_loss

    def loss(y_true, y_pred):
        import tensorflow as tf

        from .models import COMPRESSION

        bins = y_pred.shape[-1]
        clean, noisy = y_true[..., :bins], y_true[..., bins:2 * bins]
        mask = y_pred * y_true[..., 2 * bins:] if postfilter else y_pred
        total = _compressed_mse(mask * noisy, clean)
        if distortion_weight:
            total += distortion_weight * _compressed_mse(mask * clean, clean)
        if residual_weight:
            over = tf.nn.relu(tf.pow(mask * noisy + 1e-6, COMPRESSION) - tf.pow(clean + 1e-6, COMPRESSION))
            total += residual_weight * tf.reduce_mean(tf.square(over))
        return total

    return loss


def magnitude_loss(y_true, y_pred):
    """The same compressed-magnitude MSE when the model outputs the clean magnitude itself."""
    return _compressed_mse(y_pred, y_true[..., :y_pred.shape[-1]])
