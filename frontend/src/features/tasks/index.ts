export { useTask, useTaskAction, type TaskDetail } from "./api/tasks";
export { tasksKeys } from "./api/keys";
export { TaskActionButton } from "./components/task-action-button";
