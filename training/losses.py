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
                           postfilter: bool = False, sisdr_weight: float = 0.0):
    """spectral_loss plus optional prices, in the same compressed domain unless said:

    * ``distortion_weight`` x the error of the mask applied to the clean magnitude alone:
      a price on attenuating speech, which a small model otherwise pays for noise removal
      with (speech distortion against residual noise);
    * ``residual_weight`` x the squared overshoot of the masked noisy magnitude above the
      clean one (only where it is louder): a price on residual noise, the error PESQ
      weighs more than missing speech (its asymmetric disturbance);
    * ``sisdr_weight`` x minus the SI-SDR in dB of each training sequence (``sisdr_db``): a
      phase-aware, linear-domain term, which the compressed loss is not.

    With ``postfilter`` y_true carries the runtime post-filter's factors after the two
    magnitudes, and every term scores ``mask x factor``, the gain the runtime applies:
    the model is trained for what the post-filter leaves, not for the whole job. With
    ``sisdr_weight`` the cosine of each bin's noisy-minus-clean phase comes last.
    """
    if not distortion_weight and not residual_weight and not postfilter and not sisdr_weight:
        return spectral_loss

    def loss(y_true, y_pred):
        import tensorflow as tf

        from .models import COMPRESSION

        bins = y_pred.shape[-1]
        clean, noisy = y_true[..., :bins], y_true[..., bins:2 * bins]
        mask = y_pred * y_true[..., 2 * bins:3 * bins] if postfilter else y_pred
        total = _compressed_mse(mask * noisy, clean)
        if distortion_weight:
            total += distortion_weight * _compressed_mse(mask * clean, clean)
        if residual_weight:
            over = tf.nn.relu(tf.pow(mask * noisy + 1e-6, COMPRESSION) - tf.pow(clean + 1e-6, COMPRESSION))
            total += residual_weight * tf.reduce_mean(tf.square(over))
        if sisdr_weight:
            total -= sisdr_weight * tf.reduce_mean(sisdr_db(mask, noisy, clean, y_true[..., -bins:]))
        return total

    return loss


def sisdr_db(mask, noisy, clean, cos_phase):
    """SI-SDR (dB) of mask x noisy STFT against the clean STFT, one value per example
    (summed over every axis after the first), from magnitudes and the cosine of the phase
    difference alone: <est, ref> = sum(mask |X| |S| cos), |est|^2 = sum(mask^2 |X|^2).
    With the runtime's tight overlap-add frame this is, by Parseval, the SI-SDR of the
    masked frames in time before they are added up."""
    import tensorflow as tf

    axes = list(range(1, len(mask.shape)))
    dot = tf.reduce_sum(mask * noisy * clean * cos_phase, axis=axes)
    ref = tf.reduce_sum(tf.square(clean), axis=axes) + 1e-8
    est = tf.reduce_sum(tf.square(mask * noisy), axis=axes) + 1e-8
    target = tf.square(dot) / ref  # |alpha S|^2 with alpha = <est, ref> / |ref|^2
    return 10.0 * (tf.math.log(target + 1e-8) - tf.math.log(tf.nn.relu(est - target) + 1e-8)) / tf.math.log(10.0)


def magnitude_loss(y_true, y_pred):
    """The same compressed-magnitude MSE when the model outputs the clean magnitude itself."""
    return _compressed_mse(y_pred, y_true[..., :y_pred.shape[-1]])
