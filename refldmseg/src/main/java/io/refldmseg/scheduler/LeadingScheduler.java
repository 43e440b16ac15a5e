package io.refldmseg.scheduler;

/** What DDPM and DDIM share: the noise schedule, "leading" timesteps and the step to the previous one. */
abstract class LeadingScheduler implements Scheduler {
    final NoiseSchedule schedule;
    private final int[] timesteps;
    private final int stepRatio;

    LeadingScheduler(NoiseSchedule schedule, int steps) {
        this.schedule = schedule;
        this.timesteps = schedule.timesteps(steps);
        this.stepRatio = schedule.trainSteps() / steps;
    }

    @Override
    public int[] timesteps() {
        return timesteps.clone();
    }

    int timestep(int stepIndex) {
        return timesteps[stepIndex];
    }

    /** diffusers' previous_timestep: t - train_steps / inference_steps (negative past the last step). */
    int previous(int stepIndex) {
        return timesteps[stepIndex] - stepRatio;
    }
}
