package dev.tinydenoise.demo;

import android.Manifest;
import android.app.Activity;
import android.content.pm.PackageManager;
import android.content.res.AssetFileDescriptor;
import android.os.Bundle;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.CheckBox;
import android.widget.Spinner;
import android.widget.Switch;
import android.widget.TextView;
import dev.tinydenoise.dsp.FeatureSpec;
import dev.tinydenoise.dsp.StreamCore;
import dev.tinydenoise.dsp.TfliteMetadata;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Locale;

/** Live microphone denoising: model chooser, A/B switch, start/stop, latency and RTF on screen. */
public class MainActivity extends Activity {
    private static final int REQUEST_MIC = 1;
    private AudioPipeline pipeline;
    private LiteRtFrameModel model;
    private Thread audioThread;
    private TextView stats;
    private Button startStop;
    private Spinner chooser;
    private Switch denoiseSwitch;
    private CheckBox saveWav;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        setContentView(R.layout.activity_main);
        stats = findViewById(R.id.stats);
        startStop = findViewById(R.id.start_stop);
        chooser = findViewById(R.id.model_chooser);
        denoiseSwitch = findViewById(R.id.denoise_switch);
        saveWav = findViewById(R.id.save_wav);
        String[] models;
        try {
            models = getAssets().list("models");
        } catch (IOException e) {
            models = new String[0];
        }
        chooser.setAdapter(new ArrayAdapter<>(this, android.R.layout.simple_spinner_dropdown_item, models));
        denoiseSwitch.setOnCheckedChangeListener((v, on) -> { if (pipeline != null) pipeline.setDenoise(on); });
        startStop.setOnClickListener(v -> {
            if (pipeline == null) {
                if (checkSelfPermission(Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED) {
                    start();
                } else {
                    requestPermissions(new String[] {Manifest.permission.RECORD_AUDIO}, REQUEST_MIC);
                }
            } else {
                stop();
            }
        });
    }

    @Override
    public void onRequestPermissionsResult(int code, String[] permissions, int[] results) {
        if (code != REQUEST_MIC) return;
        if (results.length > 0 && results[0] == PackageManager.PERMISSION_GRANTED) {
            start();
        } else {
            stats.setText(R.string.mic_denied);
        }
    }

    private MappedByteBuffer mapAsset(String name) throws IOException {
        try (AssetFileDescriptor fd = getAssets().openFd("models/" + name);
             FileInputStream in = new FileInputStream(fd.getFileDescriptor())) {
            return in.getChannel().map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
        }
    }

    private void start() {
        Object selected = chooser.getSelectedItem();
        if (selected == null) {
            stats.setText("No bundled model: build with runtime/models/*.tflite present.");
            return;
        }
        try {
            MappedByteBuffer buffer = mapAsset(selected.toString());
            FeatureSpec spec = TfliteMetadata.readSpec(buffer);
            model = new LiteRtFrameModel(buffer, spec, 1);
            // the attenuation limit and post-filter the model's spec carries, as python -m runtime.denoise applies them
            StreamCore core = new StreamCore(spec, model);
            File wav = saveWav.isChecked() ? new File(getExternalFilesDir(null), "denoised.wav") : null;
            pipeline = new AudioPipeline(core, new AudioPipeline.Listener() {
                @Override
                public void onStats(double meanUs, double p99Us, double rtf) {
                    runOnUiThread(() -> stats.setText(String.format(Locale.US,
                            "%s\nframe: mean %.0f us, p99 %.0f us\nreal-time factor %.3f (%.0fx real time)",
                            selected, meanUs, p99Us, rtf, 1 / rtf)));
                }

                @Override
                public void onError(String message) {
                    runOnUiThread(() -> { stats.setText("Audio error: " + message); stop(); });
                }
            }, wav);
            pipeline.setDenoise(denoiseSwitch.isChecked());
            audioThread = new Thread(pipeline, "denoise-audio");
            audioThread.setPriority(Thread.MAX_PRIORITY);
            audioThread.start();
            startStop.setText(R.string.stop);
            chooser.setEnabled(false);
        } catch (IOException | IllegalArgumentException e) {
            stats.setText("Cannot load model: " + e.getMessage());
        }
    }

    private void stop() {
        if (pipeline != null) pipeline.stop();
        if (audioThread != null) {
            try { audioThread.join(1000); } catch (InterruptedException ignored) { Thread.currentThread().interrupt(); }
        }
        if (model != null) model.close();
        pipeline = null;
        audioThread = null;
        model = null;
        startStop.setText(R.string.start);
        chooser.setEnabled(true);
    }

    @Override
    protected void onStop() {
        super.onStop();
        if (pipeline != null) stop();
    }
}
