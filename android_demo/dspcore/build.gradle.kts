// Pure Java: no Android dependency, so the same code is unit-tested on a plain JVM
// (see ../jvm_test.sh, which runs these tests without Gradle).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    systemProperty("golden.dir", layout.buildDirectory.dir("jvm/golden").get().asFile.path)
}
