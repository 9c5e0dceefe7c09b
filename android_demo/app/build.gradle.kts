plugins {
    id("com.android.application")
}

android {
    namespace = "dev.tinydenoise.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.tinydenoise.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    androidResources {
        noCompress += "tflite"  // the interpreter maps models straight from the APK
    }
    sourceSets["main"].assets.srcDir(layout.buildDirectory.dir("generated/models"))
}

dependencies {
    implementation(project(":dspcore"))
    // LiteRT, the successor of TensorFlow Lite; its Interpreter keeps the org.tensorflow.lite API.
    implementation("com.google.ai.edge.litert:litert:1.4.0")
}

// The bundled models live once, in runtime/models; copy them into the APK's assets at build time.
val copyModels by tasks.registering(Copy::class) {
    from(rootDir.resolve("../runtime/models")) { include("*.tflite") }
    into(layout.buildDirectory.dir("generated/models/models"))
}
tasks.named("preBuild") { dependsOn(copyModels) }
